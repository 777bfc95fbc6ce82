/**
 * FileImageStore on real temp folders. Two store instances on one folder stand for two nodes sharing the
 * ImageFolder; the wall clock is injected so lease expiry is exact and the tests do not sleep.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, readdir, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FileImageStore, type WallClock } from "../../src/image/file.js";
import { writeLease } from "../../src/image/file-lease.js";
import { isImageError } from "../../src/image/image-store.js";

class FakeClock implements WallClock {
  slept = 0;
  constructor(public t = 1_800_000_000_000) {}
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.t += ms;
    this.slept += ms;
  }
}

let dir: string;
let clock: FakeClock;

function node(leaseMs = 5_000): FileImageStore {
  return new FileImageStore({ folder: dir, leaseMs, maxClockSkewMs: 500, clock });
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "zsha-fileimg-"));
  clock = new FakeClock();
  await writeFile(join(dir, "mnvm.img"), "MNVM-BOOT-SECTOR");
  await truncate(join(dir, "mnvm.img"), 1 << 20);
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const a1 = { node: "ceph-1", epoch: 1 };
const b2 = { node: "ceph-2", epoch: 2 };

describe("FileImageStore", () => {
  it("check: size, and the live lease holder as the user", async () => {
    const s = node();
    expect(await s.check()).toEqual({ name: join(dir, "mnvm.img"), sizeBytes: 1 << 20, users: [] });
    await s.claim(a1);
    expect((await s.check()).users).toEqual([
      { kind: "lease", address: "ceph-1", host: "ceph-1", epoch: 1, renewedAtMs: clock.t },
    ]);
    clock.t += 5_501;
    expect((await s.check()).users).toEqual([]);
  });

  it("check on a missing image is image-missing", async () => {
    await expect(new FileImageStore({ folder: dir, image: "nope.img" }).check()).rejects.toSatisfy(
      (e) => isImageError(e, "image-missing") && e.message.includes("nope.img does not exist"),
    );
  });

  it("describes the disk as the file in ImageFolder", () => {
    expect(node().describeDisk()).toEqual({ type: "file", path: join(dir, "mnvm.img"), format: "raw" });
  });

  it("a live lease blocks another node's claim; a crashed owner's lease expires and no longer blocks", async () => {
    await node().claim(a1);
    await expect(node().claim(b2)).rejects.toSatisfy(
      (e) => isImageError(e, "lock-held") && /held by node ceph-1 \(epoch 1\)/.test(e.message),
    );
    clock.t += 5_000; // lease over, but within the clock-skew allowance
    await expect(node().claim(b2)).rejects.toSatisfy((e) => isImageError(e, "lock-held"));
    clock.t += 501;
    await node().claim(b2);
    expect((await node().check()).users[0]).toMatchObject({ address: "ceph-2", epoch: 2 });
  });

  it("claiming again as the same owner is fine; an older epoch is refused", async () => {
    await node().claim(b2);
    await node().claim(b2);
    await expect(node().claim(a1)).rejects.toSatisfy(
      (e) => isImageError(e, "stale-epoch") && /epoch 2 by ceph-2, newer than our epoch 1/.test(e.message),
    );
  });

  it("fence: the new owner records its epoch, waits out the old lease, and the old owner learns it is fenced", async () => {
    const old = node();
    await old.claim(a1);
    clock.t += 1_000;
    await old.renew(a1); // the old owner is alive and renewing

    const r = await node().fence({ self: b2 });
    expect(r.fenced).toEqual([
      { kind: "lease", address: "ceph-1", host: "ceph-1", epoch: 1, renewedAtMs: clock.t - clock.slept },
    ]);
    // It waited until the old lease (renewed at the fence's start) ran out, plus the skew allowance.
    expect(clock.slept).toBe(5_500);
    expect(r.remaining).toMatchObject([{ kind: "lease", address: "ceph-2", epoch: 2 }]);

    await expect(old.renew(a1)).rejects.toSatisfy(
      (e) =>
        isImageError(e, "fenced") &&
        e.message ===
          "node ceph-1 (epoch 1) lost the MN-VM image: node ceph-2 took the image over with epoch 2; stop the MN-VM here now",
    );
    await node().renew(b2);
  });

  it("fence of an expired lease (crashed owner) does not wait", async () => {
    await node().claim(a1);
    clock.t += 60_000;
    const r = await node().fence({ self: b2 });
    expect(clock.slept).toBe(0);
    expect(r.fenced).toMatchObject([{ address: "ceph-1", epoch: 1 }]);
  });

  it("fence of an unused image confirms it without waiting", async () => {
    const r = await node().fence({ self: b2 });
    expect(r).toMatchObject({ fenced: [], remaining: [{ address: "ceph-2" }] });
    expect(clock.slept).toBe(0);
  });

  it("fence with an epoch older than the holder's is refused and changes nothing", async () => {
    await node().claim(b2);
    await expect(node().fence({ self: a1 })).rejects.toSatisfy((e) => isImageError(e, "stale-epoch"));
    await node().renew(b2);
  });

  it("an unreadable lease file is treated as a possibly live owner: fence waits a full lease", async () => {
    await writeFile(join(dir, "mnvm.img.zsha-lease"), "{ torn");
    const r = await node().fence({ self: b2 });
    expect(clock.slept).toBe(5_500);
    expect(r.fenced).toEqual([{ kind: "lease", address: "unknown", host: "unknown" }]);
  });

  it("a stale claimer that overwrote a newer owner is overruled at the newer owner's next renewal", async () => {
    await node().claim(b2);
    // The race `claim` cannot exclude: a1 read the lease while it was still free or expired, then its
    // write landed after b2's.
    await writeLease(join(dir, "mnvm.img.zsha-lease"), { ...a1, renewedAtMs: clock.t, leaseMs: 5_000 });
    await node().renew(b2); // higher epoch wins
    await expect(node().renew(a1)).rejects.toSatisfy((e) => isImageError(e, "fenced"));
  });

  it("a removed lease file means the owner can no longer prove ownership", async () => {
    await node().claim(a1);
    await rm(join(dir, "mnvm.img.zsha-lease"));
    await expect(node().renew(a1)).rejects.toSatisfy((e) => isImageError(e, "fenced"));
  });

  it("release removes only our own lease", async () => {
    await node().claim(b2);
    await node().release(a1);
    expect((await node().check()).users).toHaveLength(1);
    await node().release(b2);
    expect((await node().check()).users).toEqual([]);
    expect(await readdir(dir)).toEqual(["mnvm.img"]);
  });

  it("two nodes claiming a free image at once: exactly one wins, no temp files left", async () => {
    const contenders = Array.from({ length: 8 }, (_, i) => ({ node: `ceph-${i + 1}`, epoch: 3 }));
    const results = await Promise.allSettled(contenders.map((c) => node().claim(c)));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    for (const r of results) {
      if (r.status === "rejected") expect(isImageError(r.reason, "lock-held")).toBe(true);
    }
    expect((await readdir(dir)).sort()).toEqual(["mnvm.img", "mnvm.img.zsha-lease"]);
  });

  it("readProbe reads the image, health reports the folder", async () => {
    const p = await node().readProbe();
    expect(p).toMatchObject({ bytes: 64 * 1024, target: join(dir, "mnvm.img") });
    expect(p.latencyMs).toBeGreaterThanOrEqual(0);
    const h = await node().health();
    expect(h.status).toBe("OK");
    expect(h.summary[1]).toMatch(/^free \d+\.\d GiB of \d+\.\d GiB$/);
    const gone = await new FileImageStore({ folder: join(dir, "missing") }).health();
    expect(gone.status).toBe("ERR");
    expect(gone.checks[0]).toMatch(/ENOENT/);
  });
});

describe("FileImageStore across real processes (real clock)", () => {
  const leaseMs = 300;

  function startOwner(epoch: number): {
    proc: ChildProcess;
    lines: string[];
    exited: Promise<number | null>;
  } {
    const child = fileURLToPath(new URL("./file-owner-child.ts", import.meta.url));
    const proc = spawn(
      process.execPath,
      ["--import", "tsx", child, dir, "ceph-1", String(epoch), String(leaseMs)],
      {
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    owners.push(proc);
    const lines: string[] = [];
    proc.stdout!.on("data", (b: Buffer) => lines.push(...b.toString().trim().split("\n")));
    const exited = once(proc, "exit").then(([code]) => code as number | null);
    return { proc, lines, exited };
  }

  async function until(cond: () => boolean, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error("condition not met in time");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const owners: ChildProcess[] = [];
  afterEach(() => {
    for (const p of owners) if (p.exitCode === null) p.kill("SIGKILL");
    owners.length = 0;
  });

  it("a crashed owner (SIGKILL) blocks others only until its lease runs out", async () => {
    const owner = startOwner(1);
    await until(() => owner.lines.includes("claimed"));
    const other = new FileImageStore({ folder: dir, leaseMs, maxClockSkewMs: 50 });
    await expect(other.claim(b2)).rejects.toSatisfy((e) => isImageError(e, "lock-held"));
    owner.proc.kill("SIGKILL");
    await owner.exited;
    const t0 = Date.now();
    for (;;) {
      try {
        await other.claim(b2);
        break;
      } catch (err) {
        if (!isImageError(err, "lock-held")) throw err;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(Date.now() - t0).toBeLessThan(leaseMs + 50 + 600);
  });

  it("a live owner that is fenced notices at its next renewal and stops", async () => {
    const owner = startOwner(1);
    await until(() => owner.lines.includes("claimed"));
    const t0 = Date.now();
    const r = await new FileImageStore({ folder: dir, leaseMs, maxClockSkewMs: 50 }).fence({ self: b2 });
    expect(r.fenced).toMatchObject([{ address: "ceph-1", epoch: 1 }]);
    // By the time fence resolved, the old owner had seen it (it renews every lease/3).
    expect(await owner.exited).toBe(3);
    expect(owner.lines).toEqual(["claimed", "fenced"]);
    expect(Date.now() - t0).toBeLessThan(leaseMs + 50 + 700);
  });
});
