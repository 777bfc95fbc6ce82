/**
 * A real single-host Ceph for tests: one monitor and one in-memory (memstore) OSD on 127.0.0.1, cephx on,
 * no manager (rbd, qemu's rbd driver, auth and blocklist all work without one). About 8–12 s from nothing
 * to a usable pool on this kind of machine; see /work/shared/recipes/ceph-single-host.md.
 *
 * The daemons run in the foreground (`-f`) as our own children, so we hold their handles: `stop()` waits
 * for them, a failed `startCeph` tears down whatever it had started, and a process-exit hook SIGKILLs any
 * daemon still alive if a test runner dies before calling `stop()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";

export interface CephPorts {
  /** Monitor msgr2 port. */
  readonly monV2: number;
  /** Monitor legacy (v1) port. */
  readonly monV1: number;
  /** First port of the range the OSD binds in (it takes several). */
  readonly bindMin: number;
  readonly bindMax: number;
}

export interface StartCephOptions {
  /** Folder for config, keyrings, mon store and logs; a fresh temp folder if absent (removed at stop). */
  readonly dir?: string;
  /** Fixed ports; free ones are chosen (and probed) if absent. */
  readonly ports?: CephPorts;
  /** Pools to create and `rbd pool init` (default `["zstack"]`). */
  readonly pools?: readonly string[];
  /**
   * IPv4 the daemons bind to (default 127.0.0.1). An end-to-end test whose nodes live in network
   * namespaces passes an address they can reach (e.g. the host side of a bridge).
   */
  readonly host?: string;
}

export interface CephCluster {
  readonly dir: string;
  readonly fsid: string;
  readonly conf: string;
  readonly adminKeyring: string;
  readonly ports: CephPorts;
  /** `<host>:<v1 port>` — the form SPEC's `MonAddrs` uses. */
  readonly monAddr: string;
  /** Imports a local raw file as `pool/image` with `qemu-img convert` (qemu's rbd driver), as client.admin. */
  importImage(srcRaw: string, pool: string, image: string): Promise<void>;
  /** Runs `ceph …` as client.admin; rejects on a non-zero exit. Returns stdout. */
  ceph(args: readonly string[], timeoutMs?: number): Promise<string>;
  /** Runs `rbd …` as client.admin. */
  rbd(args: readonly string[], timeoutMs?: number): Promise<string>;
  /**
   * Creates (or returns) a cephx client with `mon 'profile rbd' osd 'profile rbd pool=…'` and writes its
   * keyring to `DIR/ceph.client.<id>.keyring`, returning that path and the key.
   */
  createRbdClient(id: string, pool: string): Promise<{ keyring: string; key: string }>;
  /** Sends a signal to a daemon, e.g. SIGSTOP/SIGCONT on the OSD to make the cluster hang. */
  signal(daemon: "mon" | "osd", sig: NodeJS.Signals): void;
  /** Stops every daemon (SIGTERM, SIGKILL after `graceMs`) and removes the folder if we created it. */
  stop(graceMs?: number): Promise<void>;
}

const CLI_TIMEOUT_MS = 30_000;

export async function startCeph(opts: StartCephOptions = {}): Promise<CephCluster> {
  const ownDir = opts.dir === undefined;
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), "zsha-ceph-")));
  const ports = opts.ports ?? (await findFreePorts());
  const fsid = randomUUID();
  const conf = join(dir, "ceph.conf");
  const adminKeyring = join(dir, "ceph.client.admin.keyring");
  const host = opts.host ?? "127.0.0.1";
  const monAddrV = `[v2:${host}:${ports.monV2},v1:${host}:${ports.monV1}]`;
  const daemons: ChildProcess[] = [];
  const byName = new Map<"mon" | "osd", ChildProcess>();
  const env = { ...process.env, CEPH_CONF: conf };

  /** Throws at once when a daemon we started has died (a port taken meanwhile, a bad config). */
  const alive = () => {
    for (const [name, c] of byName) {
      if (c.exitCode !== null || c.signalCode !== null) {
        throw new Error(
          `ceph test cluster: ceph-${name} exited (${c.exitCode ?? c.signalCode}); see ${dir}/log`,
        );
      }
    }
  };
  const run = async (cmd: string, args: readonly string[], timeoutMs = CLI_TIMEOUT_MS, input?: string) => {
    const r = await execa(cmd, args, {
      env,
      timeout: timeoutMs,
      forceKillAfterDelay: 1_000,
      ...(input === undefined ? {} : { input }),
    });
    return r.stdout;
  };
  const adminArgs = ["--conf", conf, "--id", "admin", "--keyring", adminKeyring];
  const daemon = (name: "mon" | "osd", cmd: string, args: readonly string[]) => {
    // Foreground, so the handle is ours; output goes to the log files named in ceph.conf.
    const child = spawn(cmd, [...args, "-f"], { env, stdio: "ignore" });
    daemons.push(child);
    byName.set(name, child);
    exitGuard.add(child);
    child.once("exit", () => exitGuard.delete(child));
    return child;
  };

  let stopped = false;
  const stop = async (graceMs = 15_000) => {
    if (stopped) return;
    stopped = true;
    await Promise.all(daemons.map((c) => stopChild(c, graceMs)));
    if (ownDir) await rm(dir, { recursive: true, force: true });
  };

  try {
    for (const sub of ["run", "log", "mon/ceph-a", "osd"]) await mkdir(join(dir, sub), { recursive: true });
    await writeFile(conf, cephConf(dir, fsid, monAddrV, ports, host));
    const monKeyring = join(dir, "ceph.mon.keyring");
    await run("ceph-authtool", [
      "--create-keyring",
      monKeyring,
      "--gen-key",
      "-n",
      "mon.",
      "--cap",
      "mon",
      "allow *",
    ]);
    await run("ceph-authtool", [
      "--create-keyring",
      adminKeyring,
      "--gen-key",
      "-n",
      "client.admin",
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
    await run("ceph-authtool", [monKeyring, "--import-keyring", adminKeyring]);
    const monmap = join(dir, "monmap");
    await run("monmaptool", ["--create", "--fsid", fsid, "--addv", "a", monAddrV, monmap]);
    await run("ceph-mon", ["--conf", conf, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", monKeyring]);
    daemon("mon", "ceph-mon", ["--conf", conf, "-i", "a"]);
    await until(
      async () => {
        await run("ceph", [...adminArgs, "--connect-timeout", "3", "mon", "stat"], 5_000);
      },
      "the monitor to answer",
      alive,
    );

    const key = await run("ceph-authtool", ["--gen-print-key"]);
    const osdUuid = randomUUID();
    const osdId = (
      await run(
        "ceph",
        [...adminArgs, "osd", "new", osdUuid, "-i", "-"],
        CLI_TIMEOUT_MS,
        JSON.stringify({ cephx_secret: key }),
      )
    ).trim();
    const osdData = join(dir, "osd", `ceph-${osdId}`);
    await mkdir(osdData, { recursive: true });
    await run("ceph-authtool", [
      "--create-keyring",
      join(osdData, "keyring"),
      "--name",
      `osd.${osdId}`,
      "--add-key",
      key,
    ]);
    await run("ceph-osd", ["--conf", conf, "-i", osdId, "--mkfs", "--osd-uuid", osdUuid]);
    daemon("osd", "ceph-osd", ["--conf", conf, "-i", osdId]);
    await until(
      async () => {
        const stat = JSON.parse(await run("ceph", [...adminArgs, "osd", "stat", "-f", "json"])) as {
          num_up_osds?: number;
        };
        if ((stat.num_up_osds ?? 0) < 1) throw new Error("no OSD up yet");
      },
      "the OSD to come up",
      alive,
    );

    for (const pool of opts.pools ?? ["zstack"]) {
      await run("ceph", [...adminArgs, "osd", "pool", "create", pool, "8"]);
      await run("rbd", [...adminArgs, "pool", "init", pool], 60_000);
    }
  } catch (err) {
    await stop(5_000);
    throw err;
  }

  return {
    dir,
    fsid,
    conf,
    adminKeyring,
    ports,
    monAddr: `${host}:${ports.monV1}`,
    async importImage(srcRaw, pool, image) {
      const dst = `rbd:${pool}/${image}:conf=${conf}:id=admin:keyring=${adminKeyring}`;
      await run("qemu-img", ["convert", "-f", "raw", "-O", "raw", srcRaw, dst], 120_000);
    },
    ceph: (args, timeoutMs) => run("ceph", [...adminArgs, ...args], timeoutMs),
    rbd: (args, timeoutMs) => run("rbd", [...adminArgs, ...args], timeoutMs),
    async createRbdClient(id, pool) {
      const name = `client.${id}`;
      const keyring = join(dir, `ceph.${name}.keyring`);
      await run("ceph", [
        ...adminArgs,
        "auth",
        "get-or-create",
        name,
        "mon",
        "profile rbd",
        "osd",
        `profile rbd pool=${pool}`,
        "-o",
        keyring,
      ]);
      const key = (await run("ceph", [...adminArgs, "auth", "get-key", name])).trim();
      return { keyring, key };
    },
    signal(name, sig) {
      byName.get(name)?.kill(sig);
    },
    stop,
  };
}

function cephConf(dir: string, fsid: string, monAddrV: string, p: CephPorts, host: string): string {
  // The daemons pick their address from these networks: exactly the one host address.
  const net = host.startsWith("127.") ? "127.0.0.0/8" : `${host}/32`;
  return singleHostCephConf({
    dir,
    fsid,
    monHost: monAddrV,
    net,
    global: [`ms_bind_port_min = ${p.bindMin}`, `ms_bind_port_max = ${p.bindMax}`],
  });
}

/**
 * ceph.conf of a one-monitor, one-memstore-OSD test cluster whose files all live under `dir` (shared with
 * the end-to-end harness's Ceph in its switch namespace). `global` adds lines to [global].
 */
export function singleHostCephConf(o: {
  dir: string;
  fsid: string;
  monHost: string;
  net: string;
  osdBytes?: number;
  global?: readonly string[];
}): string {
  const dir = o.dir;
  return `[global]
fsid = ${o.fsid}
mon_host = ${o.monHost}
public_network = ${o.net}
cluster_network = ${o.net}
${(o.global ?? []).map((l) => `${l}\n`).join("")}auth_cluster_required = cephx
auth_service_required = cephx
auth_client_required = cephx
keyring = ${dir}/$cluster.$name.keyring
run_dir = ${dir}/run
admin_socket = ${dir}/run/$cluster-$name.asok
log_file = ${dir}/log/$cluster-$name.log
mon_cluster_log_file = ${dir}/log/$cluster.log
pid_file = ${dir}/run/$cluster-$name.pid
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
osd_pool_default_pg_autoscale_mode = off
mon_warn_on_pool_no_redundancy = false
mon_max_pg_per_osd = 1000
osd_crush_chooseleaf_type = 0
mon_allow_pool_delete = true
auth_allow_insecure_global_id_reclaim = false
mon_warn_on_insecure_global_id_reclaim_allowed = false
[mon]
keyring = $mon_data/keyring
mon_data = ${dir}/mon/$cluster-$id
mon_initial_members = a
[osd]
keyring = $osd_data/keyring
osd_data = ${dir}/osd/$cluster-$id
osd_objectstore = memstore
memstore_device_bytes = ${o.osdBytes ?? 1024 ** 3}
osd_max_object_name_len = 460
osd_max_object_namespace_len = 64
[client]
admin_socket =
log_file =
`;
}

/** Daemons still alive when the test process exits get SIGKILL: a crashed runner leaves nothing behind. */
const exitGuard = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of exitGuard) c.kill("SIGKILL");
});

async function stopChild(child: ChildProcess, graceMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGCONT"); // a test may have paused it
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

async function until(
  probe: () => Promise<void>,
  what: string,
  alive: () => void,
  timeoutMs = 60_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    alive();
    try {
      await probe();
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`ceph test cluster: timed out waiting for ${what}`, { cause: err });
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/**
 * Picks a block of ports below the kernel's ephemeral range (so outgoing connections cannot take them)
 * and probes each one by binding it. Another process may still grab one between the probe and the
 * daemon's bind; starting at a random offset makes that unlikely, and the mon bind failing is loud.
 */
export async function findFreePorts(span = 40): Promise<CephPorts> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 10_000);
    const ports = Array.from({ length: span + 2 }, (_, i) => base + i);
    if ((await Promise.all(ports.map(canBind))).every(Boolean)) {
      return { monV2: base, monV1: base + 1, bindMin: base + 2, bindMax: base + 1 + span };
    }
  }
  throw new Error("ceph test cluster: found no free block of ports in 20000–30040");
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "0.0.0.0", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
