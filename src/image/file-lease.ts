/**
 * The lease file next to a FileConf image: who owns the MN-VM image, with which epoch, and when the owner
 * last renewed. Written so that a reader on any node sees either the old or the new record, never a torn
 * one: the record goes to a temp file in the same folder, is fsynced, renamed over the lease (atomic on
 * local filesystems and on NFS, where rename is a single server operation), and the folder is fsynced so
 * the rename itself survives a crash of the file server.
 */
import { randomBytes } from "node:crypto";
import { link, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { ImageError, type Owner } from "./image-store.js";

export interface LeaseRecord extends Owner {
  /** Wall clock (ms since the epoch) of the owner's last renewal. Nodes' clocks are chrony-synced. */
  readonly renewedAtMs: number;
  /** How long the record stays live without a renewal, as the owner promised when it wrote it. */
  readonly leaseMs: number;
}

/** The record, `undefined` when there is no lease file, or `"unreadable"` when it is not a lease record. */
export async function readLease(path: string): Promise<LeaseRecord | undefined | "unreadable"> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw fsError(err, `cannot read the image lease ${path}`);
  }
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const { node, epoch, renewedAtMs, leaseMs } = v;
    if (
      typeof node === "string" &&
      node !== "" &&
      Number.isSafeInteger(epoch) &&
      Number.isFinite(renewedAtMs) &&
      Number.isFinite(leaseMs)
    ) {
      return { node, epoch: epoch as number, renewedAtMs: renewedAtMs as number, leaseMs: leaseMs as number };
    }
  } catch {
    // Fall through: someone else's file, or hand-edited.
  }
  return "unreadable";
}

/** Replaces the lease with `rec` atomically (temp file + fsync + rename + fsync of the folder). */
export async function writeLease(path: string, rec: LeaseRecord): Promise<void> {
  const tmp = await writeTemp(path, rec);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw fsError(err, `cannot write the image lease ${path}`);
  }
  await syncDir(dirname(path));
}

/**
 * Creates the lease only if there is none: `link` fails with EEXIST when the name exists, atomically,
 * also on NFS (the classic NFS-safe lock-file trick, where O_EXCL was not always honoured). Returns false
 * when a lease already exists.
 */
export async function createLease(path: string, rec: LeaseRecord): Promise<boolean> {
  const tmp = await writeTemp(path, rec);
  try {
    await link(tmp, path);
    await syncDir(dirname(path));
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw fsError(err, `cannot create the image lease ${path}`);
  } finally {
    await unlink(tmp).catch(() => {});
  }
}

export async function removeLease(path: string): Promise<void> {
  try {
    await unlink(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT")
      throw fsError(err, `cannot remove the image lease ${path}`);
  }
  await syncDir(dirname(path));
}

async function writeTemp(path: string, rec: LeaseRecord): Promise<string> {
  // Unique per writer, in the same folder (rename and link do not cross filesystems).
  const tmp = join(dirname(path), `.${basename(path)}.${rec.node}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", 0o644);
    try {
      await fh.writeFile(`${JSON.stringify(rec)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw fsError(err, `cannot write the image lease ${path}`);
  }
  return tmp;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } catch (err) {
    // Some filesystems refuse fsync on a directory (EINVAL); the rename is then as durable as they allow.
    if ((err as NodeJS.ErrnoException).code !== "EINVAL") throw err;
  } finally {
    await fh.close();
  }
}

function fsError(err: unknown, what: string): ImageError {
  const code = (err as NodeJS.ErrnoException).code;
  const errCode =
    code === "EACCES" || code === "EPERM" || code === "EROFS" ? "permission-denied" : "command-failed";
  return new ImageError(errCode, `${what}: ${code ?? String(err)}`, { cause: err });
}
