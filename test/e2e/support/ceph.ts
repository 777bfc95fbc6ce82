/**
 * A real single-host Ceph (one monitor, one memstore OSD, cephx on, no manager) running inside the
 * harness's switch namespace on `<switchIp>:3300` (msgr2) and `:6789` (v1), reachable from every host
 * like an external Ceph cluster. The daemons run in the foreground as our children, in the switch cgroup,
 * so `Hosts.down()` kills them even if `stop()` is never reached. About 8–12 s to a usable pool.
 * Same bootstrap as test/support/ceph.ts (which binds the root namespace), per the recipe ceph-up.sh.
 */
import type { ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { singleHostCephConf } from "../../support/ceph.js";
import type { Hosts } from "./hosts.js";
import { type RunResult, waitFor } from "./run.js";

export interface SwitchCeph {
  readonly fsid: string;
  /** `<switchIp>:3300`, the monitor's msgr2 address (MonAddrs in a zsha config). */
  readonly monAddr: string;
  /** The `mon host` value for a ceph.conf: both the v2 and the v1 address. */
  readonly monHost: string;
  /** ceph.conf on the real machine (paths inside the state folder). */
  readonly confPath: string;
  readonly adminKeyringPath: string;
  /** A client-side ceph.conf for a host: fsid and mon host only. */
  readonly clientConf: string;
  /** Runs a Ceph CLI (`ceph`, `rbd`, `rados`, `qemu-img` …) as client.admin in the switch namespace. */
  exec(argv: readonly string[], opts?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** `rbd ARGS` as client.admin; returns stdout. */
  rbd(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** `ceph ARGS` as client.admin; returns stdout. */
  ceph(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Imports a local raw file as `pool/name` with qemu-img's rbd driver. */
  importImage(pool: string, name: string, localFile: string): Promise<void>;
  /** Stops the daemons (SIGTERM, then SIGKILL) and deletes the data. Idempotent. */
  stop(): Promise<void>;
}

export interface SwitchCephOptions {
  /** Pools to create and `rbd pool init` (default ["zstack"]). */
  readonly pools?: readonly string[];
  /** Memstore OSD size in bytes (default 1 GiB, the maximum we allow here: it lives in RAM). */
  readonly osdBytes?: number;
}

const GiB = 1024 ** 3;

export async function startSwitchCeph(hosts: Hosts, opts: SwitchCephOptions = {}): Promise<SwitchCeph> {
  const osdBytes = opts.osdBytes ?? GiB;
  if (!(osdBytes >= 64 * 1024 ** 2 && osdBytes <= GiB))
    throw new Error("ceph: osdBytes must be 64 MiB..1 GiB");
  const dir = join(hosts.dir, "ceph");
  const ip = hosts.switchIp;
  const fsid = randomUUID();
  const conf = join(dir, "ceph.conf");
  const adminKeyring = join(dir, "ceph.client.admin.keyring");
  const monHost = `[v2:${ip}:3300/0,v1:${ip}:6789/0]`;
  const net = `${ip.split(".").slice(0, 3).join(".")}.0/24`;
  const daemons: ChildProcess[] = [];
  const admin = ["--conf", conf, "--id", "admin", "--keyring", adminKeyring];

  const exec = (argv: readonly string[], o: { input?: string; timeoutMs?: number } = {}) =>
    hosts.switchExec(["env", `CEPH_CONF=${conf}`, ...argv], {
      timeoutMs: o.timeoutMs ?? 30_000,
      ...(o.input === undefined ? {} : { input: o.input }),
    });
  const tool = (cmd: string, args: readonly string[], timeoutMs?: number) =>
    exec([cmd, ...admin, ...args], timeoutMs === undefined ? {} : { timeoutMs }).then((r) => r.stdout);
  const daemon = (name: string, argv: readonly string[]) => {
    const c = hosts.switchSpawn([...argv, "-f"]);
    daemons.push(c);
    return () => {
      if (c.exitCode !== null || c.signalCode !== null)
        throw new Error(`ceph: ${name} exited; see ${dir}/log`);
    };
  };

  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await Promise.all(
      daemons.map(async (c) => {
        if (c.exitCode !== null || c.signalCode !== null) return;
        const exited = new Promise<void>((r) => c.once("exit", () => r()));
        c.kill("SIGTERM");
        const t = setTimeout(() => c.kill("SIGKILL"), 5_000);
        await exited;
        clearTimeout(t);
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };

  try {
    await rm(dir, { recursive: true, force: true });
    for (const sub of ["run", "log", "mon/ceph-a"]) await mkdir(join(dir, sub), { recursive: true });
    await writeFile(conf, cephConf(dir, fsid, monHost, net, osdBytes));
    const monKeyring = join(dir, "ceph.mon.keyring");
    await exec([
      "ceph-authtool",
      "--create-keyring",
      monKeyring,
      "--gen-key",
      "-n",
      "mon.",
      "--cap",
      "mon",
      "allow *",
    ]);
    await exec([
      ...["ceph-authtool", "--create-keyring", adminKeyring, "--gen-key", "-n", "client.admin"],
      ...[
        "--cap",
        "mon",
        "allow *",
        "--cap",
        "osd",
        "allow *",
        "--cap",
        "mds",
        "allow *",
        "--cap",
        "mgr",
        "allow *",
      ],
    ]);
    await exec(["ceph-authtool", monKeyring, "--import-keyring", adminKeyring]);
    const monmap = join(dir, "monmap");
    await exec([
      "monmaptool",
      "--create",
      "--fsid",
      fsid,
      "--addv",
      "a",
      monHost.replaceAll("/0", ""),
      monmap,
    ]);
    await exec([
      "ceph-mon",
      "--conf",
      conf,
      "--mkfs",
      "-i",
      "a",
      "--monmap",
      monmap,
      "--keyring",
      monKeyring,
    ]);
    const monAlive = daemon("mon", ["ceph-mon", "--conf", conf, "-i", "a"]);
    await waitFor(
      "the monitor to answer",
      async () => {
        monAlive();
        return (
          (await exec(["ceph", ...admin, "--connect-timeout", "3", "mon", "stat"]).catch(() => null)) !== null
        );
      },
      60_000,
      250,
    );

    const key = (await exec(["ceph-authtool", "--gen-print-key"])).stdout.trim();
    const osdUuid = randomUUID();
    const newOsd = ["ceph", ...admin, "osd", "new", osdUuid, "-i", "-"];
    const osdId = (await exec(newOsd, { input: JSON.stringify({ cephx_secret: key }) })).stdout.trim();
    const osdData = join(dir, "osd", `ceph-${osdId}`);
    await mkdir(osdData, { recursive: true });
    await exec([
      "ceph-authtool",
      "--create-keyring",
      join(osdData, "keyring"),
      "--name",
      `osd.${osdId}`,
      "--add-key",
      key,
    ]);
    await exec(["ceph-osd", "--conf", conf, "-i", osdId, "--mkfs", "--osd-uuid", osdUuid]);
    const osdAlive = daemon("osd", ["ceph-osd", "--conf", conf, "-i", osdId]);
    await waitFor(
      "the OSD to come up",
      async () => {
        osdAlive();
        const stat = JSON.parse(await tool("ceph", ["osd", "stat", "-f", "json"])) as {
          num_up_osds?: number;
        };
        return (stat.num_up_osds ?? 0) >= 1;
      },
      60_000,
      250,
    );
    for (const pool of opts.pools ?? ["zstack"]) {
      await tool("ceph", ["osd", "pool", "create", pool, "8"]);
      await tool("rbd", ["pool", "init", pool], 60_000);
    }
  } catch (err) {
    const log = await readFile(join(dir, "log", "ceph-mon.a.log"), "utf8").catch(() => "");
    await stop();
    throw new Error(
      `ceph: failed to start in ${hosts.switchNs}: ${(err as Error).message} ${log.slice(-500)}`,
    );
  }

  return {
    fsid,
    monAddr: `${ip}:3300`,
    monHost,
    confPath: conf,
    adminKeyringPath: adminKeyring,
    clientConf: `[global]\nfsid = ${fsid}\nmon host = ${monHost}\n`,
    exec,
    rbd: (args, timeoutMs) => tool("rbd", args, timeoutMs),
    ceph: (args, timeoutMs) => tool("ceph", args, timeoutMs),
    async importImage(pool, name, localFile) {
      const dst = `rbd:${pool}/${name}:conf=${conf}:id=admin:keyring=${adminKeyring}`;
      await exec(["qemu-img", "convert", "-f", "raw", "-O", "raw", localFile, dst], { timeoutMs: 120_000 });
    },
    stop,
  };
}

/**
 * Makes host `h` a Ceph client as a real HCI node is: /etc/ceph/ceph.conf (fsid, mon host) and the admin
 * keyring (root-only) on its own disk.
 */
export async function installCephClient(hosts: Hosts, h: string, ceph: SwitchCeph): Promise<void> {
  const keyring = await readFile(ceph.adminKeyringPath, "utf8");
  await hosts.exec(h, ["sh", "-ec", "mkdir -p /etc/ceph; cat > /etc/ceph/ceph.conf"], {
    input: ceph.clientConf,
  });
  await hosts.exec(h, ["sh", "-ec", "umask 077; cat > /etc/ceph/ceph.client.admin.keyring"], {
    input: keyring,
  });
}

function cephConf(dir: string, fsid: string, monHost: string, net: string, osdBytes: number): string {
  return singleHostCephConf({ dir, fsid, monHost, net, osdBytes, global: ["ms_bind_ipv6 = false"] });
}
