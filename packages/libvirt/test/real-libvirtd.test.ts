// The binding against a real libvirtd running qemu (TCG) that the test starts in a private mount
// namespace, and a live migration between two such daemons in two network namespaces. Needs root
// (CI is root); skipped with the reason otherwise. Prints the measured times.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Connection, type JobStats, LibvirtError, type LibvirtEvent, open } from "../src/index.js";
import {
  createNetPair,
  type Daemon,
  type NetPair,
  realLibvirtUnavailable,
  startDaemon,
  tinyGuestXml,
} from "./support/libvirtd.js";

const unavailable = realLibvirtUnavailable();
if (unavailable !== undefined) console.warn(`real-libvirtd tests skipped: ${unavailable}`);

// The first connection to a fresh daemon probes qemu's capabilities (~9 s here).
const FIRST_OPEN_MS = 90_000;

function collect(conn: Connection): LibvirtEvent[] {
  const events: LibvirtEvent[] = [];
  conn.on((e) => events.push(e));
  return events;
}

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const lifecycle = (events: LibvirtEvent[], name: string) =>
  events.flatMap((e) => (e.type === "lifecycle" && e.domain.name === name ? [`${e.event}/${e.detail}`] : []));

describe.skipIf(unavailable !== undefined)("libvirt binding on a real libvirtd (qemu, TCG)", () => {
  let daemon: Daemon | undefined;
  let conn: Connection | undefined;

  beforeAll(async () => {
    daemon = await startDaemon();
    const t0 = performance.now();
    conn = await open(daemon.uri, { timeoutMs: 30_000, openTimeoutMs: FIRST_OPEN_MS });
    await conn.versions({ timeoutMs: FIRST_OPEN_MS }); // waits out the capability probe
    console.log(`real libvirtd: first connection ready in ${Math.round(performance.now() - t0)} ms`);
  }, 150_000);

  afterAll(async () => {
    await conn?.close({ timeoutMs: 10_000 });
    await daemon?.stop();
  }, 60_000);

  it("defines, starts, reports events and state, destroys and undefines a 64 MiB guest", async () => {
    if (conn === undefined || daemon === undefined) throw new Error("daemon not started");
    const events = collect(conn);
    const v = await conn.versions();
    expect(v.type).toBe("QEMU");
    expect(v.daemon).toBe(v.library);

    const dom = await conn.defineDomain(tinyGuestXml("zsha-real-1"));
    const t0 = performance.now();
    await dom.start();
    const startMs = performance.now() - t0;
    expect(await dom.state()).toMatchObject({ state: "running", reason: "booted" });
    await waitFor("started event", () =>
      lifecycle(events, dom.name).includes("started/booted") ? true : undefined,
    );

    // The guest has no agent running: a typed error, on time.
    const agent = await dom.agentCommand('{"execute":"guest-ping"}', { agentTimeoutSec: 2 }).catch((e) => e);
    expect(agent).toBeInstanceOf(LibvirtError);
    expect((agent as LibvirtError).codeName).toMatch(/^VIR_ERR_AGENT_/);

    const t1 = performance.now();
    await dom.destroy();
    const destroyMs = performance.now() - t1;
    expect(await dom.state()).toMatchObject({ state: "shutoff", reason: "destroyed" });
    await waitFor("stopped event", () =>
      lifecycle(events, dom.name).includes("stopped/destroyed") ? true : undefined,
    );
    await dom.undefine();
    await waitFor("undefined event", () =>
      lifecycle(events, dom.name).includes("undefined/removed") ? true : undefined,
    );
    // qemu adds resumed/unpaused (it starts paused) and shutdown/host around these; the order holds.
    const key = new Set(["defined/added", "started/booted", "stopped/destroyed", "undefined/removed"]);
    expect(lifecycle(events, dom.name).filter((e) => key.has(e))).toEqual([...key]);
    console.log(`real libvirtd: start ${Math.round(startMs)} ms, destroy ${Math.round(destroyMs)} ms`);
  }, 120_000);

  it("stores a cephx secret", async () => {
    if (conn === undefined) throw new Error("daemon not started");
    const uuid = "3b1c4a2e-5d6f-4a7b-8c9d-0e1f2a3b4c5d";
    const xml = `<secret ephemeral="no" private="yes"><uuid>${uuid}</uuid>
      <usage type="ceph"><name>client.zsha secret</name></usage></secret>`;
    expect(await conn.defineSecret(xml)).toBe(uuid);
    await conn.setSecretValue(uuid, Buffer.from("AQBb2nJjAAAAABAA8+zqzq1zy+F0GkFNk2ZQ6A==", "base64"));
    await conn.undefineSecret(uuid);
    const gone = await conn.undefineSecret(uuid).catch((e) => e);
    expect((gone as LibvirtError).codeName).toBe("VIR_ERR_NO_SECRET");
  });
});

describe.skipIf(unavailable !== undefined)("connection loss on a real libvirtd", () => {
  let daemon: Daemon | undefined;

  afterAll(async () => {
    await daemon?.stop();
  }, 60_000);

  beforeAll(async () => {
    daemon = await startDaemon();
  }, 60_000);

  it("delivers the close event when libvirtd goes away, and the connection then refuses calls", async () => {
    if (daemon === undefined) throw new Error("daemon not started");
    const conn = await open(daemon.uri, { timeoutMs: 30_000, keepAlive: { intervalSec: 1, count: 3 } });
    const events = collect(conn);
    await daemon.restart();
    const closed = await waitFor("close event", () => events.find((e) => e.type === "close"));
    expect(closed).toEqual({ type: "close", reason: "eof" });
    const err = await conn.hostname({ timeoutMs: 5000 }).catch((e) => e);
    expect(err).toBeInstanceOf(LibvirtError);
    await conn.close({ timeoutMs: 5000 });
    // The restarted daemon takes new connections.
    const again = await open(daemon.uri, { timeoutMs: 30_000 });
    expect(typeof (await again.hostname())).toBe("string");
    await again.close();
  }, 120_000);

  it("times out calls to a hung libvirtd, fails fast meanwhile, and detects it by keepalive", async () => {
    if (daemon === undefined) throw new Error("daemon not started");
    // Keepalive gives up after 2 s x 2: late enough that the worker is surely still inside the hung call when
    // the second call below is made on a loaded machine (1 s x 2 raced it once in CI).
    const conn = await open(daemon.uri, { timeoutMs: 30_000, keepAlive: { intervalSec: 2, count: 2 } });
    const events = collect(conn);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 20);
    daemon.pause();
    try {
      const t0 = performance.now();
      const hung = await conn.hostname({ timeoutMs: 1000 }).catch((e) => e);
      const waited = performance.now() - t0;
      expect(hung).toMatchObject({ kind: "timeout" });
      expect(waited).toBeGreaterThanOrEqual(990);
      expect(waited).toBeLessThan(2000);
      expect(ticks).toBeGreaterThan(10); // the JS thread went on meanwhile
      // The worker is still inside the hung call: the next call is refused at once.
      expect(await conn.hostname({ timeoutMs: 10_000 }).catch((e) => e)).toMatchObject({ kind: "wedged" });
      // libvirt's keepalive (2 s x 2) declares the daemon dead.
      const closed = await waitFor(
        "keepalive close event",
        () => events.find((e) => e.type === "close"),
        15_000,
      );
      expect(closed).toEqual({ type: "close", reason: "keepalive" });
    } finally {
      clearInterval(ticker);
      daemon.resume();
    }
    await conn.close({ timeoutMs: 5000 });
    const again = await open(daemon.uri, { timeoutMs: 30_000 });
    expect(typeof (await again.hostname())).toBe("string");
    await again.close();
  }, 120_000);
});

describe.skipIf(unavailable !== undefined)("live migration between two real libvirtds", () => {
  let net: NetPair | undefined;
  const daemons: Daemon[] = [];
  const conns: Connection[] = [];

  beforeAll(async () => {
    net = createNetPair();
    const started = await Promise.allSettled([
      startDaemon({ netns: net.a.ns, address: net.a.address }),
      startDaemon({ netns: net.b.ns, address: net.b.address }),
    ]);
    // Keep every daemon that did start, so afterAll stops it even when the other one failed.
    for (const r of started) if (r.status === "fulfilled") daemons.push(r.value);
    for (const r of started) if (r.status === "rejected") throw r.reason;
    for (const d of daemons) {
      const c = await open(d.uri, { timeoutMs: 30_000, openTimeoutMs: FIRST_OPEN_MS });
      conns.push(c);
    }
    await Promise.all(conns.map((c) => c.versions({ timeoutMs: FIRST_OPEN_MS })));
  }, 200_000);

  afterAll(async () => {
    for (const c of conns) await c.close({ timeoutMs: 10_000 }).catch(() => undefined);
    for (const d of daemons) await d.stop();
    net?.remove();
  }, 60_000);

  it("migrates a running guest live, peer to peer, with progress and the completion event", async () => {
    const [src, dst] = conns;
    const [, dstDaemon] = daemons;
    if (src === undefined || dst === undefined || dstDaemon?.tcpUri === undefined || net === undefined) {
      throw new Error("daemons not started");
    }
    const srcEvents = collect(src);
    const dstEvents = collect(dst);
    const dom = await src.defineDomain(tinyGuestXml("zsha-mig-1"));
    await dom.start();

    const samples: JobStats[] = [];
    let polling = true;
    const poller = (async () => {
      while (polling) {
        const s = await dom.jobStats({ timeoutMs: 5000 }).catch(() => undefined);
        if (s !== undefined && s.type !== "none") samples.push(s);
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const t0 = performance.now();
    try {
      await dom.migrateToURI3(
        dstDaemon.tcpUri,
        {
          persistentOnDest: true,
          undefineSource: true,
          autoConverge: true,
          // A cap makes the job last long enough to watch its progress.
          bandwidthMiBps: 1,
          migrateUri: `tcp://${net.b.address}`,
          listenAddress: net.b.address,
        },
        { timeoutMs: 120_000 },
      );
    } finally {
      polling = false;
      await poller;
    }
    const migrateMs = performance.now() - t0;

    const moved = await dst.lookupDomainByName("zsha-mig-1");
    expect(await moved.state()).toMatchObject({ state: "running", reason: "migrated" });
    const gone = await src.lookupDomainByName("zsha-mig-1").catch((e) => e);
    expect((gone as LibvirtError).codeName).toBe("VIR_ERR_NO_DOMAIN");

    // Progress seen while the job ran.
    expect(samples.length).toBeGreaterThan(0);
    const processed = samples.map((s) => s.dataProcessed ?? 0);
    expect(Math.max(...processed)).toBeGreaterThan(0);
    expect(processed[processed.length - 1]).toBeGreaterThanOrEqual(processed[0] ?? 0);

    const completed = await waitFor("job-completed event", () =>
      srcEvents.find((e) => e.type === "jobCompleted" && e.domain.name === "zsha-mig-1"),
    );
    if (completed.type !== "jobCompleted") throw new Error("unreachable");
    expect(completed.stats.type).toBe("completed");
    await waitFor("started/migrated on the destination", () =>
      lifecycle(dstEvents, "zsha-mig-1").includes("started/migrated") ? true : undefined,
    );
    expect(lifecycle(srcEvents, "zsha-mig-1")).toContain("stopped/migrated");
    const iterations = srcEvents.filter((e) => e.type === "migrationIteration").length;
    expect(iterations).toBeGreaterThanOrEqual(1);

    console.log(
      `live migration: ${Math.round(migrateMs)} ms, downtime ${completed.stats.downtimeMs ?? "?"} ms, ` +
        `${completed.stats.dataProcessed ?? "?"} bytes, ${samples.length} progress samples, ` +
        `${iterations} iteration events`,
    );
    const t1 = performance.now();
    await moved.destroy();
    console.log(`destroy on the destination: ${Math.round(performance.now() - t1)} ms`);
    await moved.undefine();
  }, 180_000);
});
