// The libvirt Hypervisor driver against libvirt's in-process test driver.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { type DomainEvent, HypervisorError } from "../../src/hypervisor/hypervisor.js";
import {
  hypervisorDriverLine,
  LibvirtHypervisor,
  type LibvirtModule,
  loadLibvirt,
} from "../../src/hypervisor/libvirt.js";

const here = dirname(fileURLToPath(import.meta.url));
const URI = `test://${join(here, "fixtures", "host.xml")}`;

const xml = (name: string) =>
  `<domain type="test"><name>${name}</name><memory unit="MiB">64</memory><vcpu>1</vcpu><os><type>hvm</type></os></domain>`;

async function lib(): Promise<LibvirtModule> {
  const loaded = await loadLibvirt();
  if (!loaded.ok) throw new Error(`the binding must load in this test environment: ${loaded.reason}`);
  return loaded.lib;
}

async function failure(p: Promise<unknown>): Promise<HypervisorError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(HypervisorError);
    return err as HypervisorError;
  }
  throw new Error("expected the call to reject");
}

async function until(what: string, cond: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const open: LibvirtHypervisor[] = [];
async function connect(): Promise<LibvirtHypervisor> {
  const hv = await LibvirtHypervisor.connect(await lib(), {
    uri: URI,
    shutdownMode: "default",
    defaultTimeoutMs: 5000,
  });
  open.push(hv);
  return hv;
}
afterEach(async () => {
  for (const hv of open.splice(0)) await hv.close();
});

describe("loadLibvirt", () => {
  it("loads the binding here and names its libvirt version", async () => {
    const loaded = await loadLibvirt();
    expect(loaded).toMatchObject({ ok: true });
    if (loaded.ok) expect(loaded.version).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it("says why when the package is absent, so the agent can fall back to the simulated driver", async () => {
    const loaded = await loadLibvirt("@zsha/libvirt-not-installed");
    expect(loaded.ok).toBe(false);
    if (!loaded.ok)
      expect(loaded.reason).toMatch(/@zsha\/libvirt-not-installed is not installed .*libvirt-dev/);
    expect(hypervisorDriverLine(loaded, "qemu:///system")).toMatch(
      /^hypervisor driver: simulated \(libvirt unavailable: @zsha\/libvirt-not-installed is not installed/,
    );
    expect(hypervisorDriverLine(await loadLibvirt(), "qemu:///system")).toMatch(
      /^hypervisor driver: libvirt \(libvirt \d+\.\d+\.\d+, qemu:\/\/\/system\)$/,
    );
  });
});

describe("LibvirtHypervisor on the test driver", () => {
  it("runs a domain's lifecycle and reports it as Hypervisor events", async () => {
    const hv = await connect();
    expect(hv.driver).toBe("libvirt");
    expect(typeof (await hv.hostname())).toBe("string");
    const events: DomainEvent[] = [];
    hv.onEvent((e) => events.push(e));

    const ref = await hv.define(xml("vm1"));
    expect(ref.name).toBe("vm1");
    expect(await hv.state("vm1")).toEqual({ state: "shutoff", reason: "unknown" });
    await hv.start("vm1");
    expect(await hv.state("vm1")).toEqual({ state: "running", reason: "booted" });
    expect(await hv.getXml("vm1")).toContain("<name>vm1</name>");
    await hv.shutdown("vm1");
    expect(await hv.state("vm1")).toEqual({ state: "shutoff", reason: "shutdown" });
    await hv.start("vm1");
    await hv.destroy("vm1");
    expect(await hv.state("vm1")).toEqual({ state: "shutoff", reason: "destroyed" });
    await hv.undefine("vm1");

    await until("undefined event", () => events.some((e) => e.kind === "undefined"));
    expect(events.map((e) => ("reason" in e ? `${e.kind}:${e.reason}` : e.kind))).toEqual([
      "defined",
      "started:booted",
      "stopped:shutdown",
      "started:booted",
      "stopped:destroyed",
      "undefined",
    ]);
    expect(events[0]).toMatchObject({ domain: ref });
  });

  it("maps libvirt's errors to the contract's codes", async () => {
    const hv = await connect();
    expect(await failure(hv.state("nope"))).toMatchObject({
      code: "no-domain",
      domain: "nope",
      nativeCode: 42,
    });
    expect((await failure(hv.start("mnvm"))).code).toBe("already-active");
    await hv.define(xml("vm2"));
    expect((await failure(hv.destroy("vm2"))).code).toBe("not-running");
    expect((await failure(hv.define("<domain type='test'><name>x</name>"))).code).toBe("invalid-xml");
    expect((await failure(hv.migrate("mnvm", "test:///default"))).code).toBe("unsupported");
    expect((await failure(hv.agentCommand("mnvm", '{"execute":"guest-ping"}'))).code).toBe("unsupported");
    await hv.setUserPassword("mnvm", "root", "pw");
    await hv.undefine("vm2");
  });

  it("rejects calls after close with connection-closed and says so to listeners", async () => {
    const hv = await connect();
    const events: DomainEvent[] = [];
    hv.onEvent((e) => events.push(e));
    await hv.close();
    await hv.close();
    expect(events).toEqual([{ kind: "connection-closed", reason: "client" }]);
    expect((await failure(hv.state("mnvm"))).code).toBe("connection-closed");
  });

  it("reports a libvirtd it cannot reach as unreachable", async () => {
    const err = await failure(
      LibvirtHypervisor.connect(await lib(), { uri: "nosuch:///x", connectTimeoutMs: 5000 }),
    );
    // An unknown scheme is handed to the remote driver, which finds no libvirtd to ask.
    expect(err.code).toBe("unreachable");
    expect(err.message).toMatch(/virConnectOpen: Failed to connect/);
  });
});
