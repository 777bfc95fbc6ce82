// The storage facts of `zsha status` are observed in the background, never per request: StorageFacts on a
// clock the test drives (one probe at a time, its timeout, the real age of each observation, a late answer),
// and a real member's HA service over gRPC whose status answers at once while the probe is blocked.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningMember, runMember } from "../../src/api/serve.js";
import { type FactsClock, StorageFacts, type StorageProbe } from "../../src/api/storage-facts.js";
import { HaService } from "../../src/gen/zsha/ha/v1/ha_pb.js";
import { type Client, createClient } from "../../src/grpc/index.js";
import type { ReadProbe, StorageHealth } from "../../src/image/image-store.js";
import { freePort, until } from "../support/cluster.js";

/** Time that moves only when the test says so. */
class ManualClock implements FactsClock {
  private t = 0;
  private sleepers: { at: number; wake: () => void }[] = [];

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const s = { at: this.t + ms, wake: resolve };
      this.sleepers.push(s);
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Moves time on by `ms`, waking every sleeper due, and lets the woken code run. */
  async advance(ms: number): Promise<void> {
    this.t += ms;
    const due = this.sleepers.filter((s) => s.at <= this.t);
    this.sleepers = this.sleepers.filter((s) => s.at > this.t);
    for (const s of due) s.wake();
    await settle();
  }
}

/** Lets pending promise callbacks run (a probe's answer reaching the loop takes a few turns). */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** A probe whose every call waits until the test answers it. */
class HeldProbe implements StorageProbe {
  readonly healthCalls: {
    resolve: (v: StorageHealth) => void;
    reject: (e: Error) => void;
  }[] = [];
  readonly readCalls: { resolve: (v: ReadProbe) => void; reject: (e: Error) => void }[] = [];

  health(): Promise<StorageHealth> {
    return new Promise((resolve, reject) => this.healthCalls.push({ resolve, reject }));
  }

  readProbe(): Promise<ReadProbe> {
    return new Promise((resolve, reject) => this.readCalls.push({ resolve, reject }));
  }
}

const OK: StorageHealth = { status: "HEALTH_OK", checks: [], summary: ["mons 3/3 in quorum"] };
const READ: ReadProbe = { bytes: 4096, latencyMs: 1.5, target: "rbd_data.1.0000000000000000" };
const TIMING = { everyMs: 5000, afterFailureMs: 2000, timeoutMs: 3000 };

describe("StorageFacts", () => {
  it("reads the last observation with its real age while the next probe is blocked; one probe at a time", async () => {
    const clock = new ManualClock();
    const probe = new HeldProbe();
    const facts = StorageFacts.start(probe, { clock, timing: TIMING });
    await settle();
    // The first probes are under way: nothing observed yet, and asking does not start another.
    expect(facts.latestHealth()).toBeUndefined();
    expect(facts.latestRead()).toBeUndefined();
    for (let i = 0; i < 5; i++) facts.latestHealth();
    expect(facts.probesStarted()).toEqual({ health: 1, read: 1 });

    await clock.advance(400);
    probe.healthCalls[0]!.resolve(OK);
    probe.readCalls[0]!.resolve(READ);
    await settle();
    expect(facts.latestHealth()).toEqual({ ok: true, value: OK, ageMs: 0 });
    await clock.advance(1200);
    expect(facts.latestHealth()).toEqual({ ok: true, value: OK, ageMs: 1200 });
    expect(facts.latestRead()).toEqual({ ok: true, value: READ, ageMs: 1200 });

    // everyMs after the answer, the next probe starts and hangs: status still has the last fact, aging.
    await clock.advance(3800);
    expect(facts.probesStarted()).toEqual({ health: 2, read: 2 });
    await clock.advance(2000);
    expect(facts.latestHealth()).toEqual({ ok: true, value: OK, ageMs: 7000 });

    // At its timeout the hung probe is observed as a failure, with the age of that observation…
    await clock.advance(1000);
    expect(facts.latestHealth()).toEqual({ ok: false, error: "no answer within 3000 ms", ageMs: 0 });
    await clock.advance(10_000);
    expect(facts.latestHealth()).toMatchObject({ ok: false, ageMs: 10_000 });
    // …but it keeps its slot: no second probe while it has not settled, however long that takes.
    expect(facts.probesStarted()).toEqual({ health: 2, read: 2 });

    // Its late answer is the newer observation; the next probe follows everyMs later.
    probe.healthCalls[1]!.resolve({ ...OK, status: "HEALTH_WARN" });
    await settle();
    expect(facts.latestHealth()).toMatchObject({ ok: true, value: { status: "HEALTH_WARN" }, ageMs: 0 });
    expect(facts.latestRead()).toMatchObject({ ok: false, ageMs: 10_000 });
    await clock.advance(4999);
    expect(facts.probesStarted().health).toBe(2);
    await clock.advance(1);
    expect(facts.probesStarted().health).toBe(3);

    await facts.stop();
  });

  it("a probe failing at once (no config loaded yet) is a failed observation, tried again sooner", async () => {
    const clock = new ManualClock();
    let calls = 0;
    let config = false;
    const probe: StorageProbe = {
      health: () => {
        calls++;
        if (!config) throw new Error("no cluster config is stored yet (zsha import-config)");
        return Promise.resolve(OK);
      },
      readProbe: () => Promise.resolve(READ),
    };
    const facts = StorageFacts.start(probe, { clock, timing: TIMING });
    await settle();
    expect(facts.latestHealth()).toEqual({
      ok: false,
      error: "no cluster config is stored yet (zsha import-config)",
      ageMs: 0,
    });
    config = true;
    await clock.advance(1999);
    expect(calls).toBe(1);
    await clock.advance(1);
    expect(calls).toBe(2);
    expect(facts.latestHealth()).toEqual({ ok: true, value: OK, ageMs: 0 });
    await facts.stop();
  });

  it("stop ends the loops at once, a probe still hanging included", async () => {
    const probe = new HeldProbe();
    const facts = StorageFacts.start(probe, { clock: new ManualClock(), timing: TIMING });
    await settle();
    await facts.stop();
    expect(facts.probesStarted()).toEqual({ health: 1, read: 1 });
  });
});

describe("zsha status on a real member", () => {
  const dir = mkdtempSync(join(tmpdir(), "zsha-storage-facts-"));
  let running: RunningMember;
  let ha: Client<typeof HaService.method>;
  const probe = new HeldProbe();

  beforeAll(async () => {
    const peer = `127.0.0.1:${await freePort()}`;
    running = await runMember({
      name: "n1",
      clusterId: "storage-facts",
      peerListen: peer,
      clientListen: "127.0.0.1:0",
      dataDir: join(dir, "n1"),
      initialCluster: { n1: peer },
      tickMs: 20,
      logger: pino({ level: "silent" }),
    });
    ha = createClient(HaService, running.clientAddress!, grpc.credentials.createInsecure());
    await until("the member to lead", async () => running.member.isLeader(), 10_000, 20);
  });

  afterAll(async () => {
    ha?.close();
    await running?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** GetStatus over gRPC, with how long it took. */
  async function status() {
    const t0 = performance.now();
    const st = await ha.getStatus({});
    return { st, ms: performance.now() - t0 };
  }

  it("answers at once while the storage probe is blocked, with the last fact and its real age; no probe per request", async () => {
    running.setStorage(probe);
    await until("the first probes to start", async () => probe.healthCalls.length === 1, 5_000, 10);

    // The first `ceph status` hangs: every status answers at once (the old code waited up to its 5 s
    // timeout), says the fact is unknown, and starts no probe of its own.
    for (let i = 0; i < 5; i++) {
      const { st, ms } = await status();
      expect(ms).toBeLessThan(2000);
      expect(st.storageHealth).toMatch(/^unknown \(not observed yet/);
      expect(st.storageAgeMs).toBe(-1n);
    }
    expect(probe.healthCalls).toHaveLength(1);
    expect(probe.readCalls).toHaveLength(1);

    const answeredAt = performance.now();
    probe.healthCalls[0]!.resolve(OK);
    probe.readCalls[0]!.resolve(READ);
    const first = await until(
      "the observation in status",
      async () => {
        const { st } = await status();
        return st.storageHealth === "HEALTH_OK" ? st : undefined;
      },
      5_000,
      20,
    );
    expect(first.storageDetails).toEqual(["mons 3/3 in quorum"]);
    expect(first.hostIo).toBe("read 4096 bytes of rbd_data.1.0000000000000000 in 1.5 ms");

    // The next probe starts a few seconds later and hangs too: status still answers at once, with the fact
    // observed before and its age since then.
    await until("the next probe to start", async () => probe.healthCalls.length === 2, 10_000, 50);
    const { st, ms } = await status();
    expect(ms).toBeLessThan(2000);
    expect(st.storageHealth).toBe("HEALTH_OK");
    const sinceAnswer = performance.now() - answeredAt;
    expect(Number(st.storageAgeMs)).toBeGreaterThanOrEqual(4000);
    expect(Number(st.storageAgeMs)).toBeLessThanOrEqual(sinceAnswer + 1);
    expect(Number(st.hostIoAgeMs)).toBeLessThanOrEqual(sinceAnswer + 1);
    expect(probe.healthCalls).toHaveLength(2);
  }, 30_000);
});
