/**
 * Writes a cloud-init seed (see cloud-init.ts) as the ISO9660 image the MN-VM's cdrom points at.
 *
 * Uses `genisoimage` (Debian package of the same name), the tool cloud-init's own docs use for NoCloud
 * seeds. The image is built in a private temp folder and renamed into place, so a crash never leaves a
 * half-written seed where the next start would read it.
 */

import { execFile } from "node:child_process";
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { SEED_LABEL, type SeedFiles } from "./cloud-init.js";

const run = promisify(execFile);

export class SeedIsoError extends Error {
  override readonly name = "SeedIsoError";
}

export interface WriteSeedOptions {
  /** The ISO tool; `genisoimage` from PATH by default (`mkisofs`-compatible tools work too). */
  readonly tool?: string;
  readonly timeoutMs?: number;
}

/** Writes `files` as an ISO9660 + Joliet + Rock Ridge image labelled `cidata` at `isoPath`. */
export async function writeSeedIso(
  isoPath: string,
  files: SeedFiles,
  opts: WriteSeedOptions = {},
): Promise<void> {
  const tool = opts.tool ?? "genisoimage";
  await mkdir(dirname(isoPath), { recursive: true });
  const work = await mkdtemp(join(tmpdir(), "zsha-seed-"));
  try {
    const names = Object.keys(files) as (keyof SeedFiles)[];
    for (const name of names) await writeFile(join(work, name), files[name], { mode: 0o600 });
    const tmpIso = join(work, "seed.iso");
    const args = ["-quiet", "-output", tmpIso, "-volid", SEED_LABEL, "-joliet", "-rock", ...names];
    try {
      await run(tool, args, { cwd: work, timeout: opts.timeoutMs ?? 30_000 });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const why =
        e.code === "ENOENT"
          ? `${tool} is not installed (Debian package genisoimage)`
          : (e.stderr?.trim() || e.message).split("\n")[0];
      throw new SeedIsoError(`cannot build the cloud-init seed ${isoPath}: ${why}`, { cause: err });
    }
    // Same filesystem not guaranteed between tmpdir and isoPath: copy next to the target, then rename.
    const staged = `${isoPath}.tmp-${process.pid}`;
    await copyFile(tmpIso, staged);
    await rename(staged, isoPath);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
