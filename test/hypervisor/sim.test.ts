// The simulated hypervisor on a virtual clock: lifecycle, events, faults, fencing and live migration.
import { describe, expect, it } from "vitest";
import type { NodeName } from "../../src/config/index.js";
import { sampleConfig } from "../../src/config/index.js";
import { buildDomainXml } from "../../src/hypervisor/domain-xml.js";
import {
  type DomainEvent,
  HypervisorError,
  type MigrationProgress,
} from "../../src/hypervisor/hypervisor.js";
import { DEFAULT_SIM_TIMINGS, SimWorld } from "../../src/hypervisor/sim.js";
import { ManualScheduler, realTimeScheduler } from "../../src/hypervisor/sim-scheduler.js";

const NAME = "zsha-mnvm";
const XML = buildDomainXml({
  config: sampleConfig("CephConf"),
  node: "ceph-1" as NodeName,
  clusterId: "cluster-1",
  seedIsoPath: "/var/lib/zsha/seed.iso",
});
const IMAGE = "zstack/mnvm.img";
const T = DEFAULT_SIM_TIMINGS;

function setup() {
  const clock = new ManualScheduler();
  const world = new SimWorld(clock);
  const a = world.host("ceph-1");
  const b = world.host("ceph-2");
  const log: string[] = [];
  const record = (host: string) => (e: DomainEvent) =>
    log.push(
      `${clock.now()} ${host} ${e.kind}${"reason" in e ? ` ${e.reason}` : ""}${"domain" in e ? ` ${e.domain.name}` : ""}`,
    );
  a.onEvent(record("ceph-1"));
  b.onEvent(record("ceph-2"));
  /** Lets virtual time pass, then returns the call's outcome (value or HypervisorError). */
  async function settle<T>(ms: number, p: Promise<T>): Promise<T | HypervisorError> {
    const settled = p.catch((e: unknown) => {
      if (e instanceof HypervisorError) return e;
      throw e;
    });
    clock.advance(ms);
    return settled;
  }
  return { clock, world, a, b, log, settle };
}

async function running() {
  const s = setup();
  await s.settle(T.callMs, s.a.define(XML));
  await s.settle(T.startMs, s.a.start(NAME));
  s.log.length = 0;
  return s;
}

describe("sim hypervisor lifecycle", () => {
  it("defines, starts, destroys and undefines, with states, reasons and events", async () => {
    const { a, log, settle, world } = setup();
    expect(await settle(T.callMs, a.define(XML))).toEqual({ name: NAME, uuid: expect.any(String) });
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutoff", reason: "unknown" });
    expect(await settle(T.startMs, a.start(NAME))).toBeUndefined();
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "running", reason: "booted" });
    expect(a.isRunningWithWriteAccess(NAME)).toBe(true);
    expect(world.storage.users(IMAGE).map((u) => u.host)).toEqual(["ceph-1"]);
    expect(await settle(T.destroyMs, a.destroy(NAME))).toBeUndefined();
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutoff", reason: "destroyed" });
    expect(world.storage.users(IMAGE)).toEqual([]);
    await settle(T.callMs, a.undefine(NAME));
    expect(await settle(T.callMs, a.state(NAME))).toMatchObject({ code: "no-domain", domain: NAME });
    expect(log).toEqual([
      "5 ceph-1 defined zsha-mnvm",
      "810 ceph-1 started booted zsha-mnvm",
      "1015 ceph-1 stopped destroyed zsha-mnvm",
      "1025 ceph-1 undefined zsha-mnvm",
    ]);
  });

  it("a redefinition while running applies at the next start; undefining a running domain makes it transient", async () => {
    const { a, settle, world } = await running();
    const otherImage = XML.replace("zstack/mnvm.img", "zstack/other.img");
    await settle(T.callMs, a.define(otherImage));
    expect(world.storage.users(IMAGE)).toHaveLength(1);
    await settle(T.destroyMs, a.destroy(NAME));
    await settle(T.startMs, a.start(NAME));
    expect(world.storage.users(IMAGE)).toEqual([]);
    expect(world.storage.users("zstack/other.img")).toHaveLength(1);
    await settle(T.callMs, a.undefine(NAME));
    expect(a.isRunning(NAME)).toBe(true);
    expect(a.isDefined(NAME)).toBe(false);
    await settle(T.destroyMs, a.destroy(NAME));
    expect(await settle(T.callMs, a.state(NAME))).toMatchObject({ code: "no-domain" });
  });

  it("refuses what libvirt refuses, with typed errors", async () => {
    const { a, settle } = await running();
    expect(await settle(T.startMs, a.start(NAME))).toMatchObject({
      code: "already-active",
      message: "domain 'zsha-mnvm' is already active",
    });
    expect(await settle(T.startMs, a.start("other"))).toMatchObject({ code: "no-domain" });
    const otherUuid = XML.replace(/<uuid>[^<]+<\/uuid>/, "<uuid>11111111-2222-5333-8444-555555555555</uuid>");
    expect(await settle(T.callMs, a.define(otherUuid))).toMatchObject({ code: "operation-failed" });
    expect(await settle(T.callMs, a.define("<foo/>"))).toMatchObject({ code: "invalid-xml" });
    await settle(T.destroyMs, a.destroy(NAME));
    expect(await settle(T.destroyMs, a.destroy(NAME))).toMatchObject({ code: "not-running" });
  });

  it("shutdown asks the guest (ACPI); the guest is off only after it has shut down", async () => {
    const { a, settle, log, clock } = await running();
    await settle(T.callMs, a.shutdown(NAME));
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutdown", reason: "user" });
    clock.advance(T.guestShutdownMs);
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutoff", reason: "shutdown" });
    expect(log).toEqual(["3810 ceph-1 stopped shutdown-from-host zsha-mnvm"]);
  });

  it("a guest that ignores ACPI keeps running until destroyed", async () => {
    const { a, settle, clock } = await running();
    a.setIgnoreAcpi(true);
    await settle(T.callMs, a.shutdown(NAME));
    clock.advance(10 * T.guestShutdownMs);
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "running", reason: "booted" });
  });

  it("reports a shutdown from inside the guest and a qemu crash as such", async () => {
    const { a, settle, log } = await running();
    a.guestShutdown(NAME);
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutoff", reason: "shutdown" });
    await settle(T.startMs, a.start(NAME));
    a.crashGuest(NAME);
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutoff", reason: "crashed" });
    expect(log.map((l) => l.split(" ").slice(2).join(" "))).toEqual([
      "stopped shutdown-from-guest zsha-mnvm",
      "started booted zsha-mnvm",
      "stopped crashed zsha-mnvm",
    ]);
  });
});

describe("sim hypervisor faults", () => {
  it("a hung daemon never answers: calls time out at their deadline, the guest keeps running", async () => {
    const { a, settle, clock, log } = await running();
    a.hang();
    const started = clock.now();
    const err = await settle(2000, a.state(NAME, { timeoutMs: 1500 }));
    expect(err).toMatchObject({ code: "timeout", domain: NAME });
    expect(clock.now() - started).toBe(2000);
    expect(a.isRunningWithWriteAccess(NAME)).toBe(true);
    // Events that happen meanwhile arrive once the daemon answers again.
    a.guestShutdown(NAME);
    expect(log).toEqual([]);
    a.unhang();
    expect(log).toEqual([`${clock.now()} ceph-1 stopped shutdown-from-guest zsha-mnvm`]);
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutoff", reason: "shutdown" });
  });

  it("a timed-out call may still take effect (its outcome is unknown to the caller)", async () => {
    const { a, settle, clock } = setup();
    await settle(T.callMs, a.define(XML));
    expect(await settle(100, a.start(NAME, { timeoutMs: 100 }))).toMatchObject({ code: "timeout" });
    clock.advance(T.startMs);
    expect(a.isRunning(NAME)).toBe(true);
  });

  it("start failures are injected a given number of times", async () => {
    const { a, settle } = setup();
    await settle(T.callMs, a.define(XML));
    a.failStarts(2, "Cannot get interface MTU on 'br_eth0': No such device");
    expect(await settle(T.startMs, a.start(NAME))).toMatchObject({
      code: "operation-failed",
      message: "Cannot get interface MTU on 'br_eth0': No such device",
    });
    expect(await settle(T.startMs, a.start(NAME))).toMatchObject({ code: "operation-failed" });
    expect(await settle(T.startMs, a.start(NAME))).toBeUndefined();
  });

  it("power loss: the guest vanishes without closing its disk (a stale watcher), calls are unreachable", async () => {
    const { a, settle, world, clock } = await running();
    a.powerOff();
    expect(a.isRunning(NAME)).toBe(false);
    expect(world.storage.users(IMAGE)).toMatchObject([{ host: "ceph-1", stale: true }]);
    expect(world.storage.writers(IMAGE)).toEqual([]);
    expect(await settle(T.callMs, a.state(NAME))).toMatchObject({ code: "unreachable" });
    clock.advance(30_000);
    expect(world.storage.users(IMAGE)).toEqual([]);
    a.powerOn();
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "shutoff", reason: "unknown" });
  });

  it("a fenced (blocklisted) disk client leaves the guest running without write access", async () => {
    const { a, b, settle, world } = await running();
    await settle(T.callMs, b.define(XML));
    // The new owner fences every foreign client of the image, then starts: one writer at any time.
    for (const u of world.storage.users(IMAGE)) world.storage.blocklist(u.address);
    await settle(T.startMs, b.start(NAME));
    expect(world.runningOn(NAME)).toEqual(["ceph-1", "ceph-2"]);
    expect(world.writersOf(NAME)).toEqual(["ceph-2"]);
    expect(a.isRunningWithWriteAccess(NAME)).toBe(false);
    expect(world.storage.writers(IMAGE).map((c) => c.address)).toEqual([b.diskClient(NAME)]);
  });

  it("a dropped connection fails pending calls and says so with an event", async () => {
    const { a, settle, log, clock } = await running();
    const pending = a.state(NAME).catch((e: unknown) => e);
    a.dropConnection();
    expect(await pending).toMatchObject({ code: "connection-closed" });
    expect(log).toEqual([`${clock.now()} ceph-1 connection-closed eof`]);
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "running", reason: "booted" });
  });

  it("close rejects pending and later calls", async () => {
    const { a, settle } = await running();
    const pending = a.state(NAME).catch((e: unknown) => e);
    await a.close();
    expect(await pending).toMatchObject({ code: "connection-closed" });
    expect(await settle(T.callMs, a.state(NAME))).toMatchObject({ code: "connection-closed" });
    await a.close();
  });
});

describe("sim guest agent", () => {
  it("answers only once the guest agent is up; sets passwords; runs commands", async () => {
    const { a, settle, clock } = await running();
    expect(await settle(T.callMs, a.setUserPassword(NAME, "root", "password"))).toMatchObject({
      code: "agent-unavailable",
    });
    clock.advance(T.agentReadyMs);
    expect(await settle(T.callMs, a.setUserPassword(NAME, "root", "password"))).toBeUndefined();
    expect(a.passwordOf(NAME, "root")).toBe("password");
    expect(await settle(T.callMs, a.agentCommand(NAME, '{"execute":"guest-ping"}'))).toBe('{"return":{}}');
    expect(await settle(T.callMs, a.agentCommand(NAME, "{"))).toMatchObject({ code: "operation-failed" });
  });

  it("stores the cephx secret", async () => {
    const { a, settle } = setup();
    const secret = { uuid: "u-1", usageName: "client.zsha secret", keyBase64: "QVFB" };
    await settle(T.callMs, a.setCephSecret(secret));
    expect(a.cephSecret("u-1")).toEqual(secret);
  });
});

describe("sim live migration", () => {
  it("moves the running domain with progress, events and the disk writer", async () => {
    const { a, b, settle, world, log } = await running();
    const progress: MigrationProgress[] = [];
    const result = await settle(
      T.callMs + T.migrationMs,
      a.migrate(NAME, "sim://ceph-2", { progressIntervalMs: 400 }, (p) => progress.push(p)),
    );
    expect(result).toEqual({ durationMs: T.migrationMs, downtimeMs: 50, dataTransferred: 16 * 1024 ** 3 });
    expect(progress.map((p) => p.percent)).toEqual([20, 40, 60, 80, 100]);
    expect(progress.at(-1)).toMatchObject({ dataRemaining: 0, dataProcessed: 16 * 1024 ** 3 });
    expect(world.runningOn(NAME)).toEqual(["ceph-2"]);
    expect(world.writersOf(NAME)).toEqual(["ceph-2"]);
    expect(a.isDefined(NAME)).toBe(false);
    expect(b.isDefined(NAME)).toBe(true);
    expect(await settle(T.callMs, b.state(NAME))).toEqual({ state: "running", reason: "migrated" });
    expect(await settle(T.callMs, a.state(NAME))).toMatchObject({ code: "no-domain" });
    expect(log).toEqual([
      "2810 ceph-2 defined zsha-mnvm",
      "2810 ceph-2 started migrated zsha-mnvm",
      "2810 ceph-1 stopped migrated zsha-mnvm",
      "2810 ceph-1 undefined zsha-mnvm",
      "2810 ceph-1 job-completed zsha-mnvm",
    ]);
  });

  it("migrates onto a node that still has an old (shut off) definition of the domain", async () => {
    const { a, b, settle, world } = await running();
    await settle(T.callMs, b.define(XML));
    await settle(T.callMs + T.migrationMs, a.migrate(NAME, "sim://ceph-2"));
    expect(world.runningOn(NAME)).toEqual(["ceph-2"]);
    expect(b.isDefined(NAME)).toBe(true);
    expect(await settle(T.callMs, b.state(NAME))).toEqual({ state: "running", reason: "migrated" });
  });

  it("refuses a target that runs the domain, or is unknown or down", async () => {
    const { a, b, settle } = await running();
    await settle(T.callMs, b.define(XML));
    await settle(T.startMs, b.start(NAME));
    expect(await settle(T.callMs, a.migrate(NAME, "sim://ceph-2"))).toMatchObject({
      code: "already-active",
      message: "domain 'zsha-mnvm' is already active",
    });
    expect(await settle(T.callMs, a.migrate(NAME, "sim://ceph-9"))).toMatchObject({ code: "unreachable" });
    b.powerOff();
    expect(await settle(T.callMs, a.migrate(NAME, "sim://ceph-2"))).toMatchObject({ code: "unreachable" });
    expect(a.isRunningWithWriteAccess(NAME)).toBe(true);
  });

  it("a failed, aborted or timed-out migration leaves the domain running on the source", async () => {
    const { a, b, settle, world, clock } = await running();
    a.failNextMigration("operation failed: migration out job: unexpectedly failed");
    expect(await settle(T.callMs + T.migrationMs, a.migrate(NAME, "sim://ceph-2"))).toMatchObject({
      code: "migration-failed",
    });
    expect(world.writersOf(NAME)).toEqual(["ceph-1"]);

    const aborted = a.migrate(NAME, "sim://ceph-2").catch((e: unknown) => e);
    clock.advance(T.migrationMs / 2);
    await settle(T.callMs, a.abortJob(NAME));
    expect(await aborted).toMatchObject({ code: "migration-failed", message: /canceled by client/ });

    b.hang();
    expect(await settle(5000, a.migrate(NAME, "sim://ceph-2", { timeoutMs: 5000 }))).toMatchObject({
      code: "timeout",
    });
    expect(world.runningOn(NAME)).toEqual(["ceph-1"]);
    expect(await settle(T.callMs, a.state(NAME))).toEqual({ state: "running", reason: "booted" });
  });
});

describe("sim determinism and real time", () => {
  it("the same scenario gives the same transcript", async () => {
    async function scenario() {
      const s = await running();
      s.a.failStarts(1);
      await s.settle(T.destroyMs, s.a.destroy(NAME));
      await s.settle(T.startMs, s.a.start(NAME));
      await s.settle(T.startMs, s.a.start(NAME));
      await s.settle(T.callMs + T.migrationMs, s.a.migrate(NAME, "sim://ceph-2"));
      s.b.crashGuest(NAME);
      return s.log;
    }
    const first = await scenario();
    expect(first.length).toBeGreaterThan(4);
    expect(await scenario()).toEqual(first);
  });

  it("runs on the real clock too (the demo)", async () => {
    const world = new SimWorld(realTimeScheduler(), { ...T, callMs: 1, startMs: 5, destroyMs: 2 });
    const h = world.host("demo-1");
    await h.define(XML);
    await h.start(NAME);
    expect(await h.state(NAME)).toEqual({ state: "running", reason: "booted" });
    await h.destroy(NAME);
    await h.close();
  });
});
