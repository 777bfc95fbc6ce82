/**
 * CephConf: the MN-VM's disk is an RBD image (`PoolName`/`mnvm.img`), used through the Ceph CLIs as the
 * zsha cephx user (`mon 'profile rbd' osd 'profile rbd pool=…'`).
 *
 * Fencing, as seen on Ceph 16.2 (recipes/ceph-single-host.md):
 * - The exclusive-lock feature alone does NOT fence: two writers both succeed, the lock passing between
 *   them. Only the OSD blocklist stops a client: once an address is blocklisted the OSDs refuse its ops
 *   (its next write fails with errno 108, ESHUTDOWN) and its watch is dropped; it stays dead even after
 *   the entry expires, because it must reconnect with a new address (nonce).
 * - So `fence` blocklists every foreign client address (watchers and lock holders), then breaks their
 *   locks (`rbd lock rm`, which would blocklist too — ours came first so nothing can slip in between),
 *   and re-reads until no foreign watcher or lock is left and every fenced address is in the blocklist.
 * - `profile rbd` may `blocklist add` but not `rm`: entries expire by themselves (`blocklistSeconds`).
 * - Before Ceph 16 the command and option say "blacklist"; the local tools' release picks the word.
 */
import { performance } from "node:perf_hooks";
import { setTimeout as sleepMs } from "node:timers/promises";
import { CephCli, type CephClientOptions } from "./ceph-cli.js";
import { parseBlocklist, parseCephStatus, parseRbdInfo, parseRbdLocks, parseRbdStatus } from "./ceph-json.js";
import {
  type DiskSource,
  type FenceRequest,
  type FenceResult,
  type ImageCheck,
  ImageError,
  type ImageStore,
  type ImageUser,
  isImageError,
  type ReadProbe,
  type StorageHealth,
} from "./image-store.js";

export interface CephImageStoreOptions extends CephClientOptions {
  readonly pool: string;
  /** Image name inside the pool (default `mnvm.img`). */
  readonly image?: string;
  /** UUID of the libvirt secret holding the user's key (for the domain XML). */
  readonly secretUuid: string;
  /** How long a fenced address stays blocklisted (default 24 h; a fenced client never comes back anyway). */
  readonly blocklistSeconds?: number;
  /** How long `fence` keeps re-checking before it gives up with `fence-incomplete` (default 15 s). */
  readonly fenceConfirmMs?: number;
  /** Injected for tests of the retry pacing; real timers otherwise. */
  readonly sleep?: (ms: number) => Promise<void>;
}

export class CephImageStore implements ImageStore {
  readonly kind = "ceph";
  private readonly cli: CephCli;
  private readonly spec: string;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly opts: CephImageStoreOptions) {
    this.cli = new CephCli(opts);
    this.spec = `${opts.pool}/${opts.image ?? "mnvm.img"}`;
    this.sleep = opts.sleep ?? ((ms) => sleepMs(ms));
  }

  async check(): Promise<ImageCheck> {
    // One after the other: `rbd lock ls` opens the image and would show up as a watcher in a parallel
    // `rbd status`.
    const info = await this.cli.json("rbd", ["info", this.spec], parseRbdInfo);
    return { name: this.spec, sizeBytes: info.sizeBytes, users: await this.users() };
  }

  describeDisk(): DiskSource {
    return {
      type: "rbd",
      pool: this.opts.pool,
      image: this.opts.image ?? "mnvm.img",
      monitors: this.opts.monAddrs.map(parseMonAddr),
      user: this.opts.user,
      secretUuid: this.opts.secretUuid,
    };
  }

  async fence(req: FenceRequest): Promise<FenceResult> {
    const started = performance.now();
    const keep = new Set((req.keepAddresses ?? []).map(normAddr));
    const isForeign = (u: ImageUser) => !keep.has(normAddr(u.address));
    const blocklisted = new Set<string>();
    const fenced: ImageUser[] = [];
    const deadline = started + (this.opts.fenceConfirmMs ?? 15_000);
    for (;;) {
      // Each `ceph`/`rbd` run costs a process start and a monitor round trip: look both ways at once.
      const [users, allListed] = await Promise.all([this.users(), this.allBlocklisted(blocklisted)]);
      const foreign = users.filter(isForeign);
      if (foreign.length === 0 && allListed) {
        return { fenced, remaining: users, durationMs: Math.round(performance.now() - started) };
      }
      if (performance.now() > deadline) {
        const left = foreign.map((u) => `${u.kind} ${u.client ?? ""} ${u.address}`).join(", ");
        throw new ImageError(
          "fence-incomplete",
          `could not cut every foreign client off ${this.spec} (still there: ${left || "blocklist entries not visible"})`,
        );
      }
      // Blocklist first: from this point the OSDs refuse the old client's writes.
      const { blocklist } = await this.cli.cephTerms();
      const toList = [...new Set(foreign.map((u) => normAddr(u.address)))].filter((a) => !blocklisted.has(a));
      await Promise.all(
        toList.map(async (addr) => {
          await this.cli.run("ceph", [
            "osd",
            blocklist,
            "add",
            addr,
            String(this.opts.blocklistSeconds ?? 86_400),
          ]);
          blocklisted.add(addr);
        }),
      );
      // Then break the stale locks so the new owner's qemu can take the exclusive lock without waiting.
      await Promise.all(
        foreign.map((u) =>
          u.kind === "lock" && u.lockId !== undefined && u.client !== undefined
            ? this.breakLock(u.lockId, u.client)
            : undefined,
        ),
      );
      for (const u of foreign) {
        if (!fenced.some((f) => f.kind === u.kind && f.address === u.address)) fenced.push(u);
      }
      // A blocklisted client's watch is dropped when the OSDs see the new map; give them a moment.
      await this.sleep(100);
    }
  }

  async claim(): Promise<void> {
    // Nothing to take: qemu acquires the exclusive lock itself; safety comes from `fence`.
  }

  async renew(): Promise<void> {
    // Nothing to renew: a fenced qemu finds out from its own failing I/O (ESHUTDOWN).
  }

  async release(): Promise<void> {
    // qemu releases the exclusive lock when it closes the image.
  }

  async health(): Promise<StorageHealth> {
    const s = await this.cli.json("ceph", ["status"], parseCephStatus);
    const summary = [
      `mons ${s.monsInQuorum}/${s.mons} in quorum`,
      `osds ${s.osdsUp} up / ${s.osdsIn} in / ${s.osds} total`,
      `pgs ${s.pgs}`,
    ];
    if (s.bytesTotal > 0) summary.push(`used ${gib(s.bytesUsed)} of ${gib(s.bytesTotal)}`);
    return { status: s.status, checks: s.checks, summary };
  }

  /**
   * Reads the image's first data object straight from the OSDs with `rados get`. Unlike opening the image
   * with librbd (even read-only), this registers no watcher, so a probe never looks like a user of the
   * image to another node's `check` or `fence`.
   */
  async readProbe(): Promise<ReadProbe> {
    const info = await this.cli.json("rbd", ["info", this.spec], parseRbdInfo);
    const target = `${info.blockNamePrefix}.0000000000000000`;
    const t0 = performance.now();
    let bytes = 0;
    try {
      bytes = (await this.cli.runBytes("rados", ["--pool", this.opts.pool, "get", target, "-"])).length;
    } catch (err) {
      // A never-written (sparse) first object: the OSD still answered, which is what the probe measures.
      if (!(isImageError(err, "command-failed") && /\(2\) No such file/.test(err.detail ?? ""))) throw err;
    }
    return { bytes, latencyMs: Math.round((performance.now() - t0) * 10) / 10, target };
  }

  private async users(): Promise<ImageUser[]> {
    const [watchers, locks] = await Promise.all([
      this.cli.json("rbd", ["status", this.spec], parseRbdStatus),
      this.cli.json("rbd", ["lock", "ls", this.spec], parseRbdLocks),
    ]);
    return [
      ...watchers.map(
        (w): ImageUser => ({
          kind: "watcher",
          address: w.address,
          host: hostOf(w.address),
          client: w.client,
        }),
      ),
      ...locks.map(
        (l): ImageUser => ({
          kind: "lock",
          address: l.address,
          host: hostOf(l.address),
          client: l.locker,
          lockId: l.id,
        }),
      ),
    ];
  }

  private async breakLock(lockId: string, locker: string): Promise<void> {
    try {
      // The holder is blocklisted already (by us, checked in `fence`); librbd would blocklist it again and
      // wait for the new OSD map, which costs about a second of failover time for nothing.
      const { breakLockOption } = await this.cli.cephTerms();
      await this.cli.run("rbd", [`--${breakLockOption}=false`, "lock", "rm", this.spec, lockId, locker]);
    } catch (err) {
      // Released or broken meanwhile (e.g. by the blocklist): that is the outcome we wanted.
      if (isImageError(err, "command-failed") && /\(2\) No such file/.test(err.detail ?? "")) return;
      throw err;
    }
  }

  private async allBlocklisted(addrs: Set<string>): Promise<boolean> {
    if (addrs.size === 0) return true;
    const { blocklist } = await this.cli.cephTerms();
    const listed = new Set(
      (await this.cli.json("ceph", ["osd", blocklist, "ls"], parseBlocklist)).map(normAddr),
    );
    return [...addrs].every((a) => listed.has(a));
  }
}

/** Client addresses may carry a protocol prefix (`v1:`, `any:`) depending on who prints them. */
function normAddr(a: string): string {
  return a.replace(/^(v1|v2|any):/, "");
}

/** `127.0.0.1:0/735202948` → `127.0.0.1`; `[fd00::1]:0/42` → `fd00::1`. */
function hostOf(address: string): string {
  const hostPort = normAddr(address).split("/")[0] ?? "";
  const m = /^\[([^\]]+)\]:\d+$/.exec(hostPort) ?? /^([^:]+):\d+$/.exec(hostPort);
  return m?.[1] ?? hostPort;
}

function parseMonAddr(a: string): { host: string; port: number } {
  const s = normAddr(a.trim());
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  if (!m) return { host: s, port: 6789 };
  return { host: m[1]!, port: Number(m[2]) };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}
