/**
 * Several real "hosts" on one machine for end-to-end tests (root only). Each host is a network namespace
 * plugged into a bridge in a "switch" namespace, with its own pid/mount/uts/ipc/cgroup namespaces, a
 * persistent private disk (overlays over /etc /opt /var /root /usr /home /srv), fresh /run /tmp /dev/shm,
 * its own hostname, machine-id and boot id, and real systemd (or a tiny reaper) as PID 1.
 *
 * Every process the harness starts — hosts, commands run on them, switch-side daemons — lives in one
 * cgroup subtree `<cgroup2>/zsha-e2e-<prefix>/…`, so power-off, freeze and teardown reach all of them, and a
 * later run with the same prefix can remove whatever a crashed run left (`Hosts.up` does that first).
 * Nothing touches the root network namespace or the real /etc. Ported from the verified shell recipe.
 */
import { type ChildProcess, type StdioOptions, spawn } from "node:child_process";
import { closeSync, existsSync, openSync } from "node:fs";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { INIT_SCRIPT, type InitMode, seedDisk } from "./boot.js";
import { Faults } from "./faults.js";
import { CGROUP2, type RunResult, run, sleep, waitFor } from "./run.js";

export type { InitMode } from "./boot.js";
export type { RunResult } from "./run.js";

const HERE = dirname(fileURLToPath(import.meta.url));
const MINI_INIT = join(HERE, "mini-init.py");
const MARKER = ".zsha-e2e";
const HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export interface HostsOptions {
  /** Number of hosts h1..hN (default 3, at most 89). */
  readonly count?: number;
  /** PID 1 of each host (default "systemd"; "mini" is a reaper and boots in ~1 s). */
  readonly init?: InitMode;
  /** State folder (disks, logs); default `/tmp/zsha-e2e-<prefix>`. Removed by `down()`. */
  readonly dir?: string;
  /**
   * Namespace/cgroup name prefix (default "z"): switch netns `<prefix>sw`, host netns `<prefix>h1`…
   * Two harnesses running at once need distinct prefixes; the host names inside stay h1..hN.
   */
  readonly prefix?: string;
  /** The hosts' /24 (default "10.77.0.0/24"): switch .1, hosts .11, .12, … */
  readonly subnet?: string;
}

export interface ExecOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Extra environment (the command otherwise gets a clean login-like one: PATH, HOME, TERM, LANG). */
  readonly env?: Readonly<Record<string, string>>;
  /** Reject on a non-zero exit or a timeout (default true). */
  readonly reject?: boolean;
}

interface HostState {
  readonly name: string;
  readonly ip: string;
  readonly index: number;
  /** PID (root pid namespace) of the host's PID 1 while it is powered on. */
  anchor?: number;
}

export class Hosts {
  /** Network faults applied at the switch (invisible to the hosts). */
  readonly faults: Faults;
  private readonly hosts: Map<string, HostState>;
  private downed = false;

  private constructor(
    readonly dir: string,
    readonly prefix: string,
    readonly init: InitMode,
    /** First three octets of the /24, e.g. "10.77.0". */
    private readonly net: string,
    count: number,
  ) {
    this.hosts = new Map();
    for (let i = 1; i <= count; i++) {
      this.hosts.set(`h${i}`, { name: `h${i}`, ip: `${net}.${10 + i}`, index: i });
    }
    this.faults = new Faults(this);
  }

  /** Builds the switch and boots every host in parallel; on failure removes everything it made. */
  static async up(opts: HostsOptions = {}): Promise<Hosts> {
    const count = opts.count ?? 3;
    const prefix = opts.prefix ?? "z";
    if (!/^[a-z][a-z0-9]{0,5}$/.test(prefix))
      throw new Error(
        `hosts: prefix must be 1–6 lowercase letters/digits starting with a letter, got "${prefix}"`,
      );
    if (!Number.isInteger(count) || count < 1 || count > 89)
      throw new Error(`hosts: count must be an integer 1..89, got ${count}`);
    const m = /^(\d+\.\d+\.\d+)\.0\/24$/.exec(opts.subnet ?? "10.77.0.0/24");
    if (!m?.[1]) throw new Error(`hosts: subnet must be an IPv4 /24 like 10.77.0.0/24, got "${opts.subnet}"`);
    if (process.getuid?.() !== 0) throw new Error("hosts: must run as root (namespaces, cgroups, mounts)");
    const dir = opts.dir ?? `/tmp/zsha-e2e-${prefix}`;
    const h = new Hosts(dir, prefix, opts.init ?? "systemd", m[1], count);
    await h.removeLeftovers();
    try {
      await mkdir(join(dir, "state"), { recursive: true });
      await writeFile(join(dir, MARKER), "zsha end-to-end harness state; removed by Hosts.down()\n");
      await mkdir(h.cgroup("switch"), { recursive: true });
      const sw = h.switchNs;
      await run(["ip", "netns", "add", sw]);
      await run(["ip", "-n", sw, "link", "set", "lo", "up"]);
      // A fixed MAC, as a real switch or gateway has: a bridge without one takes the lowest MAC of its ports
      // (h1's), so every power change of h1 would re-address the switch IP (Ceph) and cut the other hosts
      // off it until their ARP entries age out (20-40 s; found by bench:e2e).
      await run(["ip", "-n", sw, "link", "add", "br0", "address", "02:77:00:00:01:fe", "type", "bridge"]);
      await run(["ip", "-n", sw, "addr", "add", `${h.switchIp}/24`, "dev", "br0"]);
      await run(["ip", "-n", sw, "link", "set", "br0", "up"]);
      for (const name of h.names()) await h.seed(name);
      await Promise.all(h.names().map((name) => h.start(name)));
    } catch (err) {
      await h.down();
      throw err;
    }
    return h;
  }

  /** Host names, h1..hN. */
  names(): string[] {
    return [...this.hosts.keys()];
  }

  ip(h: string): string {
    return this.host(h).ip;
  }

  /** The switch's address on the hosts' network (where switch-side services such as Ceph listen). */
  get switchIp(): string {
    return `${this.net}.1`;
  }

  get switchNs(): string {
    return `${this.prefix}sw`;
  }

  /** The host's network namespace name (for `ip -n`). */
  netns(h: string): string {
    return `${this.prefix}${this.host(h).name}`;
  }

  /** The switch port (veth in the switch namespace) the host is plugged into. */
  port(h: string): string {
    return `sw-${this.host(h).name}`;
  }

  /** The host's folder: its disk (`upper/`, `work/`) and its console log. */
  hostDir(h: string): string {
    return join(this.dir, this.host(h).name);
  }

  /** Whether the host is powered on. */
  isUp(h: string): boolean {
    return this.host(h).anchor !== undefined;
  }

  /** cgroup v2 directory of a host ("h1"…) or of the switch-side daemons ("switch"); the root if none. */
  cgroup(part?: string): string {
    const root = join(CGROUP2, `zsha-e2e-${this.prefix}`);
    return part === undefined ? root : join(root, part);
  }

  /**
   * Runs `argv` on host `h` (nsenter into its PID 1's namespaces, root and cwd, after joining the host's
   * cgroup so power-off and freeze cover it). Resolves with the output; by default rejects on failure.
   */
  async exec(h: string, argv: readonly string[], opts: ExecOptions = {}): Promise<RunResult> {
    const [cmd, ...args] = this.enterArgv(h, argv, opts.env);
    const timeoutMs = opts.timeoutMs ?? 60_000;
    const r = await execa(cmd!, args, {
      reject: false,
      timeout: timeoutMs,
      forceKillAfterDelay: 500,
      stdin: opts.input === undefined ? "ignore" : "pipe",
      ...(opts.input === undefined ? {} : { input: opts.input }),
    });
    const out: RunResult = { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
    if ((opts.reject ?? true) && (r.timedOut || out.exitCode !== 0)) {
      const why = r.timedOut ? `timed out after ${timeoutMs} ms` : `exited ${out.exitCode}`;
      throw new Error(`on ${h}: ${argv.join(" ")} ${why}: ${(out.stderr || out.stdout).trim().slice(-800)}`);
    }
    return out;
  }

  /** Starts a long-running `argv` on host `h`; the caller owns the handle (power-off kills it too). */
  spawn(
    h: string,
    argv: readonly string[],
    opts: { stdio?: StdioOptions; env?: Record<string, string> } = {},
  ) {
    const [cmd, ...args] = this.enterArgv(h, argv, opts.env);
    return spawn(cmd!, args, { stdio: opts.stdio ?? "pipe" });
  }

  /** Runs `argv` in the switch's network namespace (root's filesystem), in the harness's switch cgroup. */
  switchExec(argv: readonly string[], opts: { input?: string; timeoutMs?: number; reject?: boolean } = {}) {
    return run(this.switchArgv(argv), opts);
  }

  /** Starts a daemon in the switch's network namespace; it is killed by `down()` at the latest. */
  switchSpawn(
    argv: readonly string[],
    opts: { stdio?: StdioOptions; detached?: boolean } = {},
  ): ChildProcess {
    const [cmd, ...args] = this.switchArgv(argv);
    return spawn(cmd!, args, { stdio: opts.stdio ?? "ignore", detached: opts.detached ?? false });
  }

  /** sshd on the host's address with a root password that exists only on that host's disk. */
  async sshd(h: string, password: string): Promise<void> {
    const ip = this.ip(h);
    const conf = [
      `ListenAddress ${ip}`,
      "PermitRootLogin yes",
      "PasswordAuthentication yes",
      "KbdInteractiveAuthentication no",
      "UseDNS no",
      "",
    ].join("\n");
    await this.exec(h, ["chpasswd"], { input: `root:${password}\n` });
    await this.exec(h, ["sh", "-ec", "rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null"]);
    await this.exec(h, ["sh", "-ec", "cat > /etc/ssh/sshd_config.d/ztest.conf"], { input: conf });
    await this.exec(h, [
      "sh",
      "-ec",
      "mkdir -p /run/sshd && chmod 755 /run/sshd; /usr/sbin/sshd -t; " +
        "if [ -d /run/systemd/system ]; then systemctl restart ssh; else /usr/sbin/sshd; fi",
    ]);
  }

  /**
   * Power on: a fresh NIC plugged into the switch, then the host's init boots from its disk (/run, /tmp,
   * addresses and firewall rules start empty). Resolves when systemd reports running/degraded (or
   * mini-init is ready).
   */
  async start(h: string): Promise<void> {
    const s = this.host(h);
    if (s.anchor !== undefined) throw new Error(`hosts: ${h} is already powered on`);
    const ns = this.netns(h);
    const nn = s.index.toString(16).padStart(2, "0");
    await run(["ip", "netns", "add", ns]);
    await run([
      ...["ip", "-n", this.switchNs, "link", "add", this.port(h), "address", `02:77:00:00:01:${nn}`],
      ...["type", "veth", "peer", "name", "eth0", "address", `02:77:00:00:00:${nn}`, "netns", ns],
    ]);
    await run(["ip", "-n", this.switchNs, "link", "set", this.port(h), "master", "br0", "up"]);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    await run(["ip", "-n", ns, "addr", "add", `${s.ip}/24`, "dev", "eth0"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    const cg = this.cgroup(s.name);
    await mkdir(cg, { recursive: true });
    const hostDir = this.hostDir(h);
    await rm(join(hostDir, "console.log"), { force: true });
    const log = openSync(join(this.dir, "state", `${s.name}.log`), "w");
    let child: ChildProcess;
    try {
      child = spawn(
        "/bin/sh",
        [
          "-c",
          'echo $$ > "$1" && shift && exec "$@"',
          "sh",
          join(cg, "cgroup.procs"),
          ...["nsenter", `--net=/run/netns/${ns}`],
          ...[
            "unshare",
            "--pid",
            "--fork",
            "--mount",
            "--uts",
            "--ipc",
            "--cgroup",
            "--propagation",
            "private",
          ],
          ...["/bin/sh", "-c", INIT_SCRIPT, "init", s.name, hostDir, this.init, MINI_INIT],
        ],
        { detached: true, stdio: ["ignore", log, log] },
      );
    } finally {
      closeSync(log);
    }
    child.unref();
    const unsharePid = child.pid;
    let anchor: number | undefined;
    try {
      if (unsharePid === undefined) throw new Error("spawn failed");
      await waitFor(
        `${h}'s init to come up`,
        async () => {
          if (child.exitCode !== null || child.signalCode !== null) throw new Error("its init exited");
          const kids = await readFile(`/proc/${unsharePid}/task/${unsharePid}/children`, "utf8").catch(
            () => "",
          );
          const first = Number.parseInt(kids.trim().split(" ")[0] ?? "", 10);
          if (!Number.isFinite(first)) return false;
          anchor = first;
          return (
            existsSync(`/proc/${first}/root/run/init.ready`) ||
            existsSync(`/proc/${first}/root/run/systemd/private`)
          );
        },
        30_000,
      );
      s.anchor = anchor;
      await writeFile(join(this.dir, "state", `${s.name}.pid`), `${anchor}\n`);
      if (this.init === "systemd") {
        const r = await this.exec(h, ["systemctl", "is-system-running", "--wait"], {
          reject: false,
          timeoutMs: 60_000,
        });
        const state = r.stdout.trim();
        if (state !== "running" && state !== "degraded") throw new Error(`systemd says "${state}"`);
      }
    } catch (err) {
      const bootLog = await readFile(join(this.dir, "state", `${s.name}.log`), "utf8").catch(() => "");
      await this.stop(h, "hard");
      throw new Error(
        `hosts: ${h} failed to boot: ${(err as Error).message}; boot log: ${bootLog.slice(-1500)}`,
      );
    }
  }

  /**
   * Power off: "graceful" asks init to shut down first (systemd's poweroff.target, up to 15 s); then every
   * process of the host is SIGKILLed and its NIC pulled from the switch (with the namespace alive but the
   * processes dead, the kernel would still answer ping). The disk stays.
   */
  async stop(h: string, mode: "hard" | "graceful" = "hard"): Promise<void> {
    const s = this.host(h);
    const cg = this.cgroup(s.name);
    if (mode === "graceful" && s.anchor !== undefined) {
      const systemd = existsSync(`/proc/${s.anchor}/root/run/systemd/system`);
      try {
        process.kill(s.anchor, systemd ? "SIGRTMIN+4" : "SIGTERM");
        await waitFor(`${h} to shut down`, async () => !(await populated(cg)), 15_000);
      } catch {
        // Already gone, or it did not finish in time: the hard path below ends it.
      }
    }
    await killCgroup(cg);
    await run(["ip", "-n", this.switchNs, "link", "del", this.port(h)], { reject: false });
    await run(["ip", "netns", "del", this.netns(h)], { reject: false });
    await rm(join(this.dir, "state", `${s.name}.pid`), { force: true });
    s.anchor = undefined;
  }

  /** A hung machine: every process of the host stops (ping is still answered by its kernel stack). */
  async freeze(h: string): Promise<void> {
    const cg = this.cgroup(this.host(h).name);
    await writeFile(join(cg, "cgroup.freeze"), "1");
    await waitFor(`${h} to freeze`, async () =>
      /frozen 1/.test(await readFile(join(cg, "cgroup.events"), "utf8")),
    );
  }

  async thaw(h: string): Promise<void> {
    await writeFile(join(this.cgroup(this.host(h).name), "cgroup.freeze"), "0");
  }

  /**
   * The "replaced node" case: deletes the (stopped) host's disk and seeds a new one with the same name and
   * address (fresh machine-id), so `start(h)` boots an empty machine.
   */
  async wipe(h: string): Promise<void> {
    if (this.isUp(h)) throw new Error(`hosts: stop ${h} before wiping its disk`);
    const hostDir = this.hostDir(h);
    await rm(join(hostDir, "upper"), { recursive: true, force: true });
    await rm(join(hostDir, "work"), { recursive: true, force: true });
    await this.seed(h);
  }

  /** Everything off and removed (hosts, switch, its daemons, state folder). Idempotent; never throws. */
  async down(): Promise<void> {
    if (this.downed) return;
    this.downed = true;
    await this.faults.clear().catch(() => {});
    await this.removeLeftovers();
  }

  private host(h: string): HostState {
    const s = this.hosts.get(h);
    if (!s) throw new Error(`hosts: no host "${h}" (have ${this.names().join(", ")})`);
    return s;
  }

  private async seed(h: string): Promise<void> {
    const peers = this.names().map((n) => ({ name: n, ip: this.ip(n) }));
    await seedDisk({ hostDir: this.hostDir(h), name: h, init: this.init, peers });
  }

  private enterArgv(h: string, argv: readonly string[], env?: Readonly<Record<string, string>>): string[] {
    const s = this.host(h);
    if (s.anchor === undefined) throw new Error(`hosts: ${h} is powered off`);
    if (argv.length === 0) throw new Error("hosts: exec needs a command");
    const vars = Object.entries(env ?? {}).map(([k, v]) => `${k}=${v}`);
    return [
      "/bin/sh",
      "-c",
      'echo $$ > "$1" || exit 255; t=$2; shift 2; exec nsenter -t "$t" -m -u -i -n -p -C -r -w -- "$@"',
      "sh",
      join(this.cgroup(s.name), "cgroup.procs"),
      String(s.anchor),
      ...["env", "-i", `PATH=${HOST_PATH}`, "HOME=/root", "TERM=dumb", "LANG=C.UTF-8", ...vars],
      ...argv,
    ];
  }

  private switchArgv(argv: readonly string[]): string[] {
    return [
      "/bin/sh",
      "-c",
      'echo $$ > "$1" || exit 255; shift; exec nsenter "--net=/run/netns/$0" -- "$@"',
      this.switchNs,
      join(this.cgroup("switch"), "cgroup.procs"),
      ...argv,
    ];
  }

  /** Kills and removes whatever this prefix owns: cgroup subtree, namespaces, the state folder. */
  private async removeLeftovers(): Promise<void> {
    await killCgroup(this.cgroup());
    const list = await run(["ip", "netns", "list"], { reject: false });
    const mine = new RegExp(`^${this.prefix}(sw|h\\d+)$`);
    for (const line of list.stdout.split("\n")) {
      const ns = line.split(" ")[0] ?? "";
      if (mine.test(ns)) await run(["ip", "netns", "del", ns], { reject: false });
    }
    if (existsSync(this.dir)) {
      if (!existsSync(join(this.dir, MARKER)) && (await readdir(this.dir)).length > 0)
        throw new Error(`hosts: ${this.dir} exists and is not a harness state folder; refusing to delete it`);
      await rm(this.dir, { recursive: true, force: true });
    }
  }
}

async function populated(cg: string): Promise<boolean> {
  const ev = await readFile(join(cg, "cgroup.events"), "utf8").catch(() => "populated 0");
  return /populated 1/.test(ev);
}

/** SIGKILLs every process in a cgroup subtree (frozen ones too), waits until empty, removes the dirs. */
async function killCgroup(cg: string): Promise<void> {
  if (!existsSync(cg)) return;
  await writeFile(join(cg, "cgroup.kill"), "1").catch(() => {});
  const deadline = Date.now() + 10_000;
  while ((await populated(cg)) && Date.now() < deadline) await sleep(50);
  await writeFile(join(cg, "cgroup.freeze"), "0").catch(() => {});
  await rmdirTree(cg);
}

async function rmdirTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const e of entries) if (e.isDirectory()) await rmdirTree(join(dir, e.name));
  await run(["rmdir", dir], { reject: false });
}
