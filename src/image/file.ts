/**
 * FileConf: the MN-VM's disk is a file in `ImageFolder`, a folder shared by every node (NFS or another
 * shared mount), protected by an epoch-stamped lease file beside it (`<image>.zsha-lease`, file-lease.ts).
 *
 * Why a lease file and not flock/fcntl: on NFS those locks are held by the client kernel, which keeps
 * renewing them as long as it runs. A hung agent whose qemu still runs (the very case fencing exists for)
 * would therefore hold the lock forever, nobody else can break it, and a crashed node's lock is reclaimed
 * only when the server's own lease lapses (NFSv4: 90 s by default), outside our control. A lease file
 * carrying the owner's epoch (from the KV, where every assignment increments it) can be taken over on
 * purpose by a newer owner, expires on our timing when its owner crashes, and tells the old owner — at its
 * next renewal — that it was fenced.
 *
 * What it cannot do: the file server does not enforce it. The old writer is stopped by its own agent
 * (renewal rejects with `fenced`, the agent destroys its MN-VM) or by its own lease timer (an owner that
 * cannot renew within `leaseMs` destroys its MN-VM; DESIGN.md's self-fencing). `fence` therefore waits
 * until the previous holder's lease has run out (plus the allowed clock skew) before it confirms: by then
 * a live old owner has seen the fence or stopped itself. Ceph's blocklist has no such wait.
 *
 * Every filesystem call is bounded by `timeoutMs`: a hung NFS mount yields a `timeout` error (the call
 * itself may stay stuck in a libuv thread until the server answers; it cannot be cancelled).
 */
import { open, stat, statfs } from "node:fs/promises";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as sleepMs } from "node:timers/promises";
import { createLease, type LeaseRecord, readLease, removeLease, writeLease } from "./file-lease.js";
import {
  type DiskSource,
  type FenceRequest,
  type FenceResult,
  type ImageCheck,
  ImageError,
  type ImageStore,
  type ImageUser,
  type Owner,
  type ReadProbe,
  type StorageHealth,
} from "./image-store.js";

export interface WallClock {
  /** Milliseconds since the Unix epoch (lease records are compared across nodes). */
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: WallClock = { now: () => Date.now(), sleep: (ms) => sleepMs(ms) };

export interface FileImageStoreOptions {
  /** The shared `ImageFolder`. */
  readonly folder: string;
  /** Image file name inside the folder (default `mnvm.img`). */
  readonly image?: string;
  readonly format?: "raw" | "qcow2";
  /** How long a lease stays live without renewal (default 5 s, the owner lease of DESIGN.md). */
  readonly leaseMs?: number;
  /** Largest clock difference between nodes we tolerate (default 500 ms; chrony keeps it far lower). */
  readonly maxClockSkewMs?: number;
  /** Bound on each filesystem call (default 10 s). */
  readonly timeoutMs?: number;
  readonly clock?: WallClock;
}

export class FileImageStore implements ImageStore {
  readonly kind = "file";
  readonly imagePath: string;
  readonly leasePath: string;
  private readonly leaseMs: number;
  private readonly skewMs: number;
  private readonly timeoutMs: number;
  private readonly clock: WallClock;

  constructor(private readonly opts: FileImageStoreOptions) {
    const image = opts.image ?? "mnvm.img";
    this.imagePath = join(opts.folder, image);
    this.leasePath = join(opts.folder, `${image}.zsha-lease`);
    this.leaseMs = opts.leaseMs ?? 5_000;
    this.skewMs = opts.maxClockSkewMs ?? 500;
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.clock = opts.clock ?? systemClock;
  }

  async check(): Promise<ImageCheck> {
    const st = await this.bounded("stat the image", () => stat(this.imagePath)).catch((err) => {
      throw this.missingOr(err);
    });
    const lease = await this.read();
    const users =
      lease !== undefined && lease !== "unreadable" && this.isLive(lease) ? [leaseUser(lease)] : [];
    return { name: this.imagePath, sizeBytes: st.size, users };
  }

  describeDisk(): DiskSource {
    return { type: "file", path: this.imagePath, format: this.opts.format ?? "raw" };
  }

  /** Takes the lease for a normal start: free, expired, or already ours. */
  async claim(self: Owner): Promise<void> {
    const mine = this.record(self);
    if (await this.bounded("create the image lease", () => createLease(this.leasePath, mine))) return;
    const cur = await this.read();
    if (cur !== undefined && cur !== "unreadable") {
      if (cur.epoch > self.epoch) throw this.staleEpoch(self, cur);
      const ours = cur.node === self.node && cur.epoch === self.epoch;
      if (!ours && this.isLive(cur)) {
        throw new ImageError(
          "lock-held",
          `${this.imagePath} is held by node ${cur.node} (epoch ${cur.epoch}) whose lease is still live; fence it before starting here`,
        );
      }
    }
    // Expired, unreadable, or ours: take it over, then make sure no concurrent claimer replaced us.
    await this.write(mine);
    await this.confirmOurs(self);
  }

  async renew(self: Owner): Promise<void> {
    const cur = await this.read();
    if (cur === undefined || cur === "unreadable") {
      // Only a newer owner or an operator removes or rewrites a live lease: we cannot prove we still own it.
      throw this.fenced(self, "its lease file is gone or was overwritten");
    }
    if (cur.epoch > self.epoch || (cur.epoch === self.epoch && cur.node !== self.node)) {
      throw this.fenced(self, `node ${cur.node} took the image over with epoch ${cur.epoch}`);
    }
    // Ours, or a stale claimer (lower epoch) overwrote us: the higher epoch wins.
    await this.write(this.record(self));
  }

  async release(self: Owner): Promise<void> {
    const cur = await this.read();
    if (cur !== undefined && cur !== "unreadable" && cur.node === self.node && cur.epoch === self.epoch) {
      await this.bounded("remove the image lease", () => removeLease(this.leasePath));
    }
  }

  /**
   * Records `self` as the owner (refusing if a newer epoch holds the lease), then waits out the previous
   * holder's lease so that, when this resolves, the old owner has either seen the fence at a renewal or
   * stopped itself for lack of one. Keeps our own record fresh while it waits.
   */
  async fence(req: FenceRequest): Promise<FenceResult> {
    const started = performance.now();
    const self = req.self;
    const prev = await this.read();
    if (prev !== undefined && prev !== "unreadable" && prev.epoch > self.epoch)
      throw this.staleEpoch(self, prev);
    await this.write(this.record(self));
    await this.confirmOurs(self);

    const wasOther =
      prev !== undefined && (prev === "unreadable" || prev.node !== self.node || prev.epoch !== self.epoch);
    const fenced: ImageUser[] = [];
    if (wasOther) {
      // An unreadable record may hide a live owner: wait a full lease for it.
      const waitUntil =
        prev === "unreadable"
          ? this.clock.now() + this.leaseMs + this.skewMs
          : Math.min(prev.renewedAtMs + prev.leaseMs, this.clock.now() + prev.leaseMs) + this.skewMs;
      if (prev !== "unreadable") fenced.push(leaseUser(prev));
      else fenced.push({ kind: "lease", address: "unknown", host: "unknown" });
      await this.holdUntil(self, waitUntil);
    }
    const cur = await this.confirmOurs(self);
    return { fenced, remaining: [leaseUser(cur)], durationMs: Math.round(performance.now() - started) };
  }

  async health(): Promise<StorageHealth> {
    try {
      const fs = await this.bounded("statfs the image folder", () => statfs(this.opts.folder));
      const total = fs.blocks * fs.bsize;
      const free = fs.bavail * fs.bsize;
      return {
        status: "OK",
        checks: [],
        summary: [`folder ${this.opts.folder}`, `free ${gib(free)} of ${gib(total)}`],
      };
    } catch (err) {
      return { status: "ERR", checks: [err instanceof Error ? err.message : String(err)], summary: [] };
    }
  }

  /**
   * Reads the image's first 64 KiB. On NFS, opening a file revalidates it with the server, but unchanged
   * data may still come from the client's page cache: this proves the mount answers, not the disk speed.
   */
  async readProbe(): Promise<ReadProbe> {
    const t0 = performance.now();
    const bytes = await this.bounded("read the image", async () => {
      const fh = await open(this.imagePath, "r");
      try {
        const { bytesRead } = await fh.read(Buffer.alloc(64 * 1024), 0, 64 * 1024, 0);
        return bytesRead;
      } finally {
        await fh.close();
      }
    }).catch((err) => {
      throw this.missingOr(err);
    });
    return { bytes, latencyMs: Math.round((performance.now() - t0) * 10) / 10, target: this.imagePath };
  }

  private async holdUntil(self: Owner, untilMs: number): Promise<void> {
    for (;;) {
      const left = untilMs - this.clock.now();
      if (left <= 0) return;
      // Whole milliseconds: renew a few times per lease without float drift in the wait.
      await this.clock.sleep(Math.min(left, Math.max(1, Math.floor(this.leaseMs / 3))));
      await this.renew(self);
    }
  }

  private async confirmOurs(self: Owner): Promise<LeaseRecord> {
    const cur = await this.read();
    if (cur === undefined || cur === "unreadable" || cur.node !== self.node || cur.epoch !== self.epoch) {
      const who =
        cur === undefined || cur === "unreadable" ? "nobody readable" : `${cur.node} epoch ${cur.epoch}`;
      throw new ImageError(
        "fence-incomplete",
        `${this.leasePath} does not hold our record after writing it (it holds ${who})`,
      );
    }
    return cur;
  }

  private record(self: Owner): LeaseRecord {
    return { node: self.node, epoch: self.epoch, renewedAtMs: this.clock.now(), leaseMs: this.leaseMs };
  }

  private isLive(rec: LeaseRecord): boolean {
    return this.clock.now() < rec.renewedAtMs + rec.leaseMs + this.skewMs;
  }

  private read(): Promise<LeaseRecord | undefined | "unreadable"> {
    return this.bounded("read the image lease", () => readLease(this.leasePath));
  }

  private write(rec: LeaseRecord): Promise<void> {
    return this.bounded("write the image lease", () => writeLease(this.leasePath, rec));
  }

  private staleEpoch(self: Owner, cur: LeaseRecord): ImageError {
    return new ImageError(
      "stale-epoch",
      `${this.leasePath} is held with epoch ${cur.epoch} by ${cur.node}, newer than our epoch ${self.epoch}; this node is not the owner`,
    );
  }

  private fenced(self: Owner, why: string): ImageError {
    return new ImageError(
      "fenced",
      `node ${self.node} (epoch ${self.epoch}) lost the MN-VM image: ${why}; stop the MN-VM here now`,
    );
  }

  private missingOr(err: unknown): unknown {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      return new ImageError(
        "image-missing",
        `the MN-VM image ${this.imagePath} does not exist (check ImageFolder)`,
        {
          cause: err,
        },
      );
    }
    return err;
  }

  /** Runs a filesystem call with a deadline; a hung mount becomes a `timeout` error. */
  private async bounded<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new ImageError(
              "timeout",
              `could not ${what} within ${this.timeoutMs / 1000} s (is ${this.opts.folder} hung?)`,
            ),
          ),
        this.timeoutMs,
      );
    });
    try {
      return await Promise.race([fn(), deadline]);
    } finally {
      clearTimeout(timer);
    }
  }
}

function leaseUser(r: LeaseRecord): ImageUser {
  return { kind: "lease", address: r.node, host: r.node, epoch: r.epoch, renewedAtMs: r.renewedAtMs };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}
