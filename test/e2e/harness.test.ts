/**
 * Proves the end-to-end harness itself (test/e2e/support): three hosts with systemd as PID 1, sshd with a
 * root password, faults at the switch, power cycles, a hung host, Ceph in the switch namespace, libvirtd
 * per host, and the tiny TCG guest booting from RBD and live-migrating h1→h2 with its counter continuing.
 * The install tests build on exactly these pieces.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installCephClient, type SwitchCeph, startSwitchCeph } from "./support/ceph.js";
import { buildGuestImage, GUEST_TICK, guestDomainXml } from "./support/guest.js";
import { Hosts } from "./support/hosts.js";
import { addBridge, defineCephSecret, setupLibvirtd } from "./support/libvirt.js";
import { e2eUnavailable } from "./support/requirements.js";
import { waitFor } from "./support/run.js";

const why = e2eUnavailable();
if (why) console.warn(`test/e2e/harness.test.ts skipped: ${why}`);

const PASSWORD = `pw-${randomBytes(6).toString("hex")}`;
const SSH_OPTS = [
  ...["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"],
  ...["-o", "ConnectTimeout=3", "-o", "BatchMode=no"],
];

describe.skipIf(why !== undefined)("e2e harness: hosts, faults, Ceph, libvirt", () => {
  let hosts: Hosts;
  let ceph: SwitchCeph | undefined;
  const timings: Record<string, number> = {};
  const timed = async <T>(what: string, f: () => Promise<T>): Promise<T> => {
    const t = Date.now();
    const r = await f();
    timings[what] = Date.now() - t;
    return r;
  };
  /** ssh from `from` to `to` with the root password; resolves with exit code and output. */
  const ssh = (from: string, to: string, command: string, password = PASSWORD) =>
    hosts.exec(from, ["sshpass", "-p", password, "ssh", ...SSH_OPTS, `root@${hosts.ip(to)}`, command], {
      reject: false,
      timeoutMs: 20_000,
    });
  const ping = async (from: string, ip: string) =>
    (await hosts.exec(from, ["ping", "-c", "1", "-W", "1", ip], { reject: false })).exitCode === 0;

  beforeAll(async () => {
    hosts = await timed("hosts up (3, systemd)", () =>
      Hosts.up({ count: 3, init: "systemd", prefix: "zht" }),
    );
    const image = join(hosts.dir, "mnvm.img");
    await Promise.all([
      timed("ceph up", async () => {
        ceph = await startSwitchCeph(hosts);
      }),
      buildGuestImage(image),
      timed("sshd x3", () => Promise.all(hosts.names().map((h) => hosts.sshd(h, PASSWORD)))),
      timed("libvirtd h1+h2 (first connect)", () =>
        Promise.all(["h1", "h2"].map((h) => setupLibvirtd(hosts, h))),
      ),
    ]);
    await ceph!.importImage("zstack", "mnvm.img", image);
  }, 150_000);

  afterAll(async () => {
    await ceph?.stop();
    await hosts?.down();
    console.log(`e2e harness timings (ms): ${JSON.stringify(timings)}`);
  }, 60_000);

  it("ssh with the root password from h1 lands on h2, and h2's files exist on h2 only", async () => {
    const token = randomBytes(8).toString("hex");
    const r = await ssh("h1", "h2", `hostname; echo ${token} > /opt/marker`);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout.trim()).toBe("h2");
    expect((await hosts.exec("h2", ["cat", "/opt/marker"])).stdout.trim()).toBe(token);
    expect((await hosts.exec("h1", ["cat", "/opt/marker"], { reject: false })).stdout).not.toContain(token);
    expect(existsSync("/opt/marker")).toBe(false);
    const wrong = await ssh("h1", "h2", "true", "not-the-password");
    expect(wrong.exitCode).not.toBe(0);
  });

  it("switch faults: isolate, cut, one-way, loss, link and delay do exactly what they say; clear restores", async () => {
    const [ip1, ip2, ip3] = ["h1", "h2", "h3"].map((h) => hosts.ip(h));
    expect(await ping("h1", ip3!)).toBe(true);
    await hosts.faults.isolate("h3");
    expect(await ping("h1", ip3!)).toBe(false);
    expect(await ping("h3", hosts.switchIp)).toBe(false);
    expect(await ping("h1", ip2!)).toBe(true);
    await hosts.faults.clear();
    expect(await ping("h1", ip3!)).toBe(true);

    await hosts.faults.cut("h1", "h3");
    expect(await ping("h1", ip3!)).toBe(false);
    expect(await ping("h2", ip3!)).toBe(true);
    expect(await ping("h2", ip1!)).toBe(true);
    await hosts.faults.clear();

    // One way: h3 still receives h1's echo requests (its RX counter grows) but its replies are dropped.
    const rx = async () =>
      Number((await hosts.exec("h3", ["cat", "/sys/class/net/eth0/statistics/rx_packets"])).stdout);
    await hosts.faults.onewayOut("h3");
    const rx0 = await rx();
    expect(await ping("h1", ip3!)).toBe(false);
    expect(await rx()).toBeGreaterThan(rx0);
    await hosts.faults.clear();
    await hosts.faults.onewayIn("h3");
    expect(await ping("h1", ip3!)).toBe(false);
    await hosts.faults.clear();
    await hosts.faults.loss("h3", 99); // numgen path; 1 ping passing both ways: p = 1e-4
    expect(await ping("h1", ip3!)).toBe(false);
    await hosts.faults.clear();
    await hosts.faults.link("h3", "down");
    expect(await ping("h1", ip3!)).toBe(false);
    await hosts.faults.clear(); // replugs
    expect(await ping("h1", ip3!)).toBe(true);

    await hosts.faults.delay("h3", 100);
    const r = await hosts.exec("h1", ["ping", "-c", "2", "-i", "0.2", "-W", "2", ip3!]);
    const avg = Number(/= [\d.]+\/([\d.]+)\//.exec(r.stdout)?.[1]);
    expect(avg).toBeGreaterThanOrEqual(195); // 100 ms each way
    await hosts.faults.clear();
    expect(await ping("h1", ip3!)).toBe(true);
  });

  it("hard power-off kills everything and pulls the NIC; power-on keeps the disk; wipe gives an empty h3", async () => {
    const token = randomBytes(8).toString("hex");
    await hosts.exec("h3", ["sh", "-ec", `echo ${token} > /srv/keep; echo x > /run/volatile`]);
    const oldId = (await hosts.exec("h3", ["cat", "/etc/machine-id"])).stdout.trim();
    const sleeper = hosts.spawn("h3", ["sleep", "999"], { stdio: "ignore" });
    const gone = new Promise((r) => sleeper.once("exit", r));

    await timed("power off h3 (hard)", () => hosts.stop("h3", "hard"));
    await gone;
    expect(await ping("h1", hosts.ip("h3"))).toBe(false);

    await timed("power on h3", () => hosts.start("h3"));
    expect((await hosts.exec("h3", ["cat", "/srv/keep"])).stdout.trim()).toBe(token);
    expect((await hosts.exec("h3", ["test", "-e", "/run/volatile"], { reject: false })).exitCode).not.toBe(0);
    expect((await hosts.exec("h3", ["systemctl", "is-active", "ssh"])).stdout.trim()).toBe("active");
    expect((await ssh("h1", "h3", "hostname")).stdout.trim()).toBe("h3");

    await hosts.stop("h3", "graceful");
    await hosts.wipe("h3");
    await hosts.start("h3");
    expect((await hosts.exec("h3", ["hostname"])).stdout.trim()).toBe("h3");
    expect((await hosts.exec("h3", ["cat", "/etc/machine-id"])).stdout.trim()).not.toBe(oldId);
    expect((await hosts.exec("h3", ["test", "-e", "/srv/keep"], { reject: false })).exitCode).not.toBe(0);
    expect(await ping("h1", hosts.ip("h3"))).toBe(true);
    await hosts.sshd("h3", PASSWORD);
  });

  it("a frozen host still answers ping but ssh to it times out; thaw brings it back", async () => {
    await hosts.freeze("h3");
    expect(await ping("h1", hosts.ip("h3"))).toBe(true);
    const t = Date.now();
    const r = await ssh("h1", "h3", "hostname");
    expect(r.exitCode).not.toBe(0);
    expect(r.stdout).not.toContain("h3");
    expect(Date.now() - t).toBeGreaterThanOrEqual(2_500); // it waited (ConnectTimeout=3), not refused
    await hosts.thaw("h3");
    expect((await ssh("h1", "h3", "hostname")).stdout.trim()).toBe("h3");
  });

  it("Ceph in the switch namespace serves RBD to a host with the admin keyring", async () => {
    await installCephClient(hosts, "h3", ceph!);
    const r = await hosts.exec("h3", ["rbd", "ls", "zstack"], { timeoutMs: 30_000 });
    expect(r.stdout.split("\n")).toContain("mnvm.img");
  });

  it("a bridge with carrier exists on a host", async () => {
    await addBridge(hosts, "h1", "brmgmt");
    const r = await hosts.exec("h1", ["ip", "-o", "link", "show", "brmgmt"]);
    expect(r.stdout).toContain("LOWER_UP");
  });

  it("the tiny guest boots from RBD on h1 and live-migrates to h2, its counter continuing there", async () => {
    const key = (await ceph!.ceph(["auth", "get-key", "client.admin"])).trim();
    const secret = randomUUID();
    for (const h of ["h1", "h2"]) {
      await installCephClient(hosts, h, ceph!);
      await defineCephSecret(hosts, h, secret, key);
    }
    const serialLog = "/var/log/zsha-guest-serial.log";
    const xml = guestDomainXml({
      name: "mnvm",
      rbd: "zstack/mnvm.img",
      monAddr: ceph!.monAddr,
      cephUser: "admin",
      secretUuid: secret,
      serialLog,
    });
    await hosts.exec("h1", ["sh", "-ec", "cat > /root/mnvm.xml; virsh -q define /root/mnvm.xml"], {
      input: xml,
    });
    await timed("guest start", () =>
      hosts.exec("h1", ["virsh", "-q", "start", "mnvm"], { timeoutMs: 30_000 }),
    );
    const ticks = async (h: string) => {
      const out = (await hosts.exec(h, ["cat", serialLog], { reject: false })).stdout;
      return [...out.matchAll(GUEST_TICK)].map((m) => Number(m[1]));
    };
    await waitFor("the guest's second tick on h1", async () => (await ticks("h1")).length >= 2, 20_000, 200);

    await timed("live migration h1->h2", () =>
      hosts.exec(
        "h1",
        [
          "virsh",
          "migrate",
          "--live",
          "--p2p",
          "--persistent",
          "--undefinesource",
          "mnvm",
          `qemu+tcp://${hosts.ip("h2")}/system`,
        ],
        { timeoutMs: 60_000 },
      ),
    );
    const lastOnH1 = Math.max(...(await ticks("h1")));
    await waitFor("two ticks on h2", async () => (await ticks("h2")).length >= 2, 20_000, 200);
    const onH2 = await ticks("h2");
    expect(onH2[0]).toBeGreaterThan(lastOnH1); // same guest memory: the count goes on, it does not restart
    expect((await hosts.exec("h2", ["virsh", "domstate", "mnvm"])).stdout.trim()).toBe("running");
    expect((await hosts.exec("h1", ["virsh", "-q", "list", "--all", "--name"])).stdout.trim()).toBe("");
    await hosts.exec("h2", ["virsh", "-q", "destroy", "mnvm"]);
  }, 90_000);
});
