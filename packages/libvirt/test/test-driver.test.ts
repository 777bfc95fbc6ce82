// The binding against libvirt's in-process test driver (test:///ABS/PATH/host.xml): no daemon needed.
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type Connection, isLibvirtError, LibvirtError, type LibvirtEvent, open } from "../src/index.js";

const here = dirname(fileURLToPath(import.meta.url));
const HOST_URI = `test://${join(here, "fixtures", "host.xml")}`;

const domainXml = (name: string) => `
<domain type="test">
  <name>${name}</name>
  <memory unit="MiB">64</memory>
  <vcpu>1</vcpu>
  <os><type>hvm</type></os>
</domain>`;

/** Resolves with the first event matching `pred`, or rejects after `ms`. */
function nextEvent(conn: Connection, pred: (e: LibvirtEvent) => boolean, ms = 5000): Promise<LibvirtEvent> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off();
      reject(new Error("event did not arrive"));
    }, ms);
    const off = conn.on((e) => {
      if (!pred(e)) return;
      clearTimeout(timer);
      off();
      resolve(e);
    });
  });
}

async function rejection(p: Promise<unknown>): Promise<LibvirtError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(LibvirtError);
    return err as LibvirtError;
  }
  throw new Error("expected the call to reject");
}

const opened: Connection[] = [];
async function connect(timeoutMs = 10_000): Promise<Connection> {
  const c = await open(HOST_URI, { timeoutMs });
  opened.push(c);
  return c;
}
afterEach(async () => {
  for (const c of opened.splice(0)) await c.close({ timeoutMs: 5000 });
});

describe("libvirt binding on the test driver", () => {
  it("opens, reports versions and hostname, finds the fixture's domains", async () => {
    const conn = await connect();
    const v = await conn.versions();
    expect(v.type).toBe("TEST");
    expect(v.library).toMatch(/^\d+\.\d+\.\d+$/);
    expect(v.daemon).toBe(v.library);
    expect(typeof (await conn.hostname())).toBe("string");

    const names = (await conn.listDomains()).map((d) => d.name).sort();
    expect(names).toEqual(["alpha", "beta"]);
    const alpha = await conn.lookupDomainByName("alpha");
    expect(alpha.uuid).toBe("6695eb01-f6a4-8304-79aa-97f2502e193f");
    expect((await conn.lookupDomainByUUID(alpha.uuid)).name).toBe("alpha");
    expect((await alpha.state()).state).toBe("running");
    expect((await (await conn.lookupDomainByName("beta")).state()).state).toBe("shutoff");
  });

  it("drives a domain's lifecycle and delivers its events to JS", async () => {
    const conn = await connect();
    const seen: string[] = [];
    conn.on((e) => {
      if (e.type === "lifecycle" && e.domain.name === "gamma") seen.push(`${e.event}/${e.detail}`);
    });

    const defined = nextEvent(conn, (e) => e.type === "lifecycle" && e.event === "defined");
    const dom = await conn.defineDomain(domainXml("gamma"));
    expect(dom.name).toBe("gamma");
    expect(dom.uuid).toMatch(/^[0-9a-f-]{36}$/);
    await defined;
    expect(await dom.state()).toMatchObject({ state: "shutoff" });

    const perDomain: string[] = [];
    const off = dom.on((e) => {
      if (e.type === "lifecycle") perDomain.push(e.event);
    });
    const started = nextEvent(conn, (e) => e.type === "lifecycle" && e.event === "started");
    await dom.start();
    expect(await started).toMatchObject({ domain: { name: "gamma", uuid: dom.uuid }, detail: "booted" });
    expect(await dom.state()).toEqual({ state: "running", reason: "booted", stateCode: 1, reasonCode: 1 });
    expect(await dom.xml()).toContain("<name>gamma</name>");

    // The test driver supports only the driver's default shutdown method: ACPI is refused, typed.
    const acpi = await rejection(dom.shutdown());
    expect(acpi).toMatchObject({
      kind: "libvirt",
      codeName: "VIR_ERR_INVALID_ARG",
      call: "virDomainShutdown",
    });
    const stopped = nextEvent(conn, (e) => e.type === "lifecycle" && e.event === "stopped");
    await dom.shutdown({ mode: "default" });
    expect(await stopped).toMatchObject({ detail: "shutdown" });
    expect(await dom.state()).toMatchObject({ state: "shutoff", reason: "shutdown" });

    await dom.start();
    const destroyed = nextEvent(conn, (e) => e.type === "lifecycle" && e.event === "stopped");
    await dom.destroy();
    expect(await destroyed).toMatchObject({ detail: "destroyed" });
    expect(await dom.state()).toMatchObject({ state: "shutoff", reason: "destroyed" });

    const undefinedEv = nextEvent(conn, (e) => e.type === "lifecycle" && e.event === "undefined");
    await dom.undefine();
    await undefinedEv;
    off();
    expect(seen).toEqual([
      "defined/added",
      "started/booted",
      "stopped/shutdown",
      "started/booted",
      "stopped/destroyed",
      "undefined/removed",
    ]);
    expect(perDomain).toEqual(["started", "stopped", "started", "stopped", "undefined"]);
    const gone = await rejection(conn.lookupDomainByName("gamma"));
    expect(gone.codeName).toBe("VIR_ERR_NO_DOMAIN");
  });

  it("types libvirt's errors with code, domain and the failing call", async () => {
    const conn = await connect();
    const missing = await rejection(conn.lookupDomainByName("nope"));
    expect(missing).toMatchObject({ kind: "libvirt", code: 42, codeName: "VIR_ERR_NO_DOMAIN" });
    expect(missing.call).toBe("virDomainLookupByName");
    expect(missing.domainName).toMatch(/^VIR_FROM_/);
    expect(missing.message).toContain("Domain not found");
    expect(isLibvirtError(missing, "VIR_ERR_NO_DOMAIN")).toBe(true);

    const badXml = await rejection(conn.defineDomain("<domain"));
    expect(badXml.codeName).toBe("VIR_ERR_XML_DETAIL");

    const alpha = await conn.lookupDomainByName("alpha");
    const running = await rejection(alpha.start());
    // The test driver reports this one as an internal error; qemu says VIR_ERR_OPERATION_INVALID.
    expect(running).toMatchObject({ kind: "libvirt", call: "virDomainCreate" });
    expect(running.message).toMatch(/already running/i);

    // What the test driver cannot do is refused as such, not faked.
    // (libvirt's own API layer refuses peer-to-peer migration for a driver without that feature.)
    const migrate = await rejection(alpha.migrateToURI3("test:///default"));
    expect(migrate.codeName).toBe("VIR_ERR_ARGUMENT_UNSUPPORTED");
    const badParam = await rejection(alpha.migrateToURI3("test:///default", { bandwidthMiBps: -1 }));
    expect(badParam).toMatchObject({ kind: "invalid-argument" });
    expect(badParam.message).toContain("bandwidthMiBps");
    expect((await rejection(alpha.jobStats())).codeName).toBe("VIR_ERR_NO_SUPPORT");

    const bad = await rejection(open("nosuchdriver:///x", { timeoutMs: 5000 }));
    expect(bad).toMatchObject({ kind: "libvirt", call: "virConnectOpen" });
  });

  it("sets a user password through the driver", async () => {
    const conn = await connect();
    const alpha = await conn.lookupDomainByName("alpha");
    await alpha.setUserPassword("root", "s3cret");
    const beta = await conn.lookupDomainByName("beta");
    expect((await rejection(beta.setUserPassword("root", "x"))).codeName).toBe("VIR_ERR_OPERATION_INVALID");
  });

  it("times out a stuck call without blocking JS, then fails fast until the worker is free", async () => {
    const conn = await connect(5000);
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 10);
    const t0 = performance.now();
    // The worker is held for 4 s, as by a hung libvirtd; the call gives up after 200 ms. (4 s, not less: on a
    // loaded machine the checks below must still find the worker held.)
    const stuck = await rejection(conn.occupyWorkerForTest(4000, { timeoutMs: 200 }));
    const waited = performance.now() - t0;
    expect(stuck.kind).toBe("timeout");
    expect(waited).toBeGreaterThanOrEqual(190);
    expect(waited).toBeLessThan(1000);
    expect(ticks).toBeGreaterThanOrEqual(5); // the JS thread kept running its timers meanwhile

    // While the stuck call holds the worker past its deadline, new calls are refused at once.
    const t1 = performance.now();
    const wedged = await rejection(conn.hostname({ timeoutMs: 5000 }));
    expect(wedged.kind).toBe("wedged");
    expect(performance.now() - t1).toBeLessThan(100);
    clearInterval(ticker);

    // Once libvirt (here: the sleep) returns, the connection works again.
    await new Promise((r) => setTimeout(r, 4000));
    expect(typeof (await conn.hostname())).toBe("string");

    // A call queued behind a slow (not yet overdue) one times out on its own deadline.
    const slow = conn.occupyWorkerForTest(400, { timeoutMs: 2000 });
    const queued = await rejection(conn.hostname({ timeoutMs: 100 }));
    expect(queued.kind).toBe("timeout");
    await slow;
  });

  it("runs job stats and abort on threads of their own, not behind a busy worker", async () => {
    const conn = await connect(5000);
    const alpha = await conn.lookupDomainByName("alpha");
    const busy = conn.occupyWorkerForTest(1000, { timeoutMs: 5000 });
    const t0 = performance.now();
    // The test driver has no jobs: the point is that the answer comes while the worker is still busy.
    expect((await rejection(alpha.jobStats())).codeName).toBe("VIR_ERR_NO_SUPPORT");
    expect((await rejection(alpha.abortJob())).codeName).toBe("VIR_ERR_NO_SUPPORT");
    expect(performance.now() - t0).toBeLessThan(500);
    await busy;
  });

  it("rejects pending and later calls once closed; close is idempotent", async () => {
    const conn = await open(HOST_URI, { timeoutMs: 5000 });
    const pending = conn.occupyWorkerForTest(300, { timeoutMs: 5000 });
    const closing = conn.close();
    expect(conn.close()).toBe(closing);
    await pending;
    await closing;
    expect(conn.closed).toBe(true);
    expect((await rejection(conn.hostname())).kind).toBe("closed");
  });
});

describe("process lifetime", () => {
  const child = join(here, "fixtures", "exit-child.ts");

  /** Runs the child script; resolves with its exit code, or "alive" if it is still running after `ms`. */
  function runChild(mode: string, ms: number): Promise<{ code: number | "alive"; out: string }> {
    return new Promise((resolve) => {
      const p = spawn(process.execPath, ["--import", "tsx", child, HOST_URI, mode], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      p.stdout.on("data", (d: Buffer) => {
        out += d.toString();
      });
      const timer = setTimeout(() => {
        p.kill("SIGKILL");
        resolve({ code: "alive", out });
      }, ms);
      p.on("exit", (code) => {
        clearTimeout(timer);
        resolve({ code: code ?? -1, out });
      });
    });
  }

  it("exits on its own once the connection is closed", async () => {
    const r = await runChild("close", 15_000);
    expect(r.out).toContain("events:started/booted");
    expect(r.code).toBe(0);
  });

  it("survives a worker thread that exits with a call still running on its connection", async () => {
    const out = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const p = spawn(process.execPath, [join(here, "fixtures", "worker-exit-child.mjs"), HOST_URI], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let text = "";
      p.stdout.on("data", (d: Buffer) => {
        text += d.toString();
      });
      p.on("exit", (code) => resolve({ code, out: text }));
    });
    expect(out).toEqual({ code: 0, out: "survived\n" });
  });

  it("stays alive while a connection is open (the control for the test above)", async () => {
    const r = await runChild("keep-open", 4000);
    expect(r.out).toContain("events:started/booted");
    expect(r.code).toBe("alive");
  });
});
