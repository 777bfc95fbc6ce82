/**
 * Starts a real libvirtd (qemu driver, software emulation) for a test, without touching the host's /etc,
 * as /work/shared/recipes/libvirt-on-this-machine.md describes: a private mount namespace in which
 * /etc/libvirt, /etc/passwd and /etc/group are the test's own files and /run, /var/lib, /var/cache,
 * /var/log are overlays with upper dirs in the test's folder. Optionally inside a network namespace,
 * listening on TCP there (for peer-to-peer migration). Needs root.
 *
 * `stop()` destroys what is left: qemu processes of the daemon (found by their pid files), the daemon,
 * the folder. It is safe to call after a failed start and more than once.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes, randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface DaemonOptions {
  /** Network namespace to run in (created by the caller). */
  readonly netns?: string;
  /** Address inside the namespace to listen on for TCP and to use for migration streams. */
  readonly address?: string;
}

export interface Daemon {
  readonly dir: string;
  /** URI for the test process (unix socket, works from any network namespace). */
  readonly uri: string;
  /** URI another daemon uses to reach this one (qemu+tcp://address/system), when `address` is set. */
  readonly tcpUri: string | undefined;
  /** The daemon's log, for failure messages. */
  log(): string;
  /** Stops libvirtd (SIGTERM) and starts it again on the same folder, like a service restart. */
  restart(): Promise<void>;
  /** Freezes libvirtd (SIGSTOP): a hung daemon, sockets open but no answers. */
  pause(): void;
  /** Lets a paused libvirtd run again (SIGCONT). */
  resume(): void;
  stop(): Promise<void>;
}

/** Why real-libvirtd tests cannot run here, or undefined when they can. */
export function realLibvirtUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (private mount and network namespaces, libvirtd as root)";
  for (const bin of ["/usr/sbin/libvirtd", "/usr/bin/qemu-system-x86_64", "/usr/bin/unshare"]) {
    if (!existsSync(bin)) return `${bin} is missing (see .ci/install.d/libvirt.pkgs)`;
  }
  return undefined;
}

const OVERLAID = ["run", "var/lib", "var/cache", "var/log"];

export async function startDaemon(opts: DaemonOptions = {}): Promise<Daemon> {
  const dir = mkdtempSync(join(tmpdir(), "zsha-libvirtd-"));
  const etc = join(dir, "etc");
  const sock = join(dir, "sock");
  mkdirSync(etc);
  mkdirSync(sock);
  for (const d of OVERLAID) {
    mkdirSync(join(dir, "upper", d), { recursive: true });
    mkdirSync(join(dir, "work", d), { recursive: true });
  }
  // The host may have no /var/log/libvirt; libvirtd refuses to start without its log file's folder.
  mkdirSync(join(dir, "upper/var/log/libvirt/qemu"), { recursive: true });
  const tcp = opts.address !== undefined;
  writeFileSync(
    join(etc, "libvirtd.conf"),
    [
      `unix_sock_dir = "${sock}"`,
      `auth_unix_rw = "none"`,
      `auth_unix_ro = "none"`,
      // Distinct per daemon, else migration says "Attempt to migrate guest to the same host".
      `host_uuid = "${randomUUID()}"`,
      `log_outputs = "2:file:/var/log/libvirt/libvirtd.log"`,
      ...(tcp
        ? [`listen_tcp = 1`, `listen_tls = 0`, `listen_addr = "${opts.address}"`, `auth_tcp = "none"`]
        : []),
      "",
    ].join("\n"),
  );
  writeFileSync(
    join(etc, "qemu.conf"),
    [
      `user = "root"`,
      `group = "root"`,
      // No virtlogd on this machine: qemu's stdio goes to a file.
      `stdio_handler = "file"`,
      `cgroup_controllers = [ ]`,
      `security_driver = "none"`,
      ...(tcp ? [`migration_address = "${opts.address}"`, `migration_host = "${opts.address}"`] : []),
      "",
    ].join("\n"),
  );
  // libvirt 9 looks up its built-in qemu user before reading qemu.conf; the host has none.
  writeFileSync(
    join(dir, "passwd"),
    `${readFileSync("/etc/passwd", "utf8").trimEnd()}\nlibvirt-qemu:x:64055:64055::/var/lib/libvirt:/usr/sbin/nologin\n`,
  );
  writeFileSync(
    join(dir, "group"),
    `${readFileSync("/etc/group", "utf8").trimEnd()}\nlibvirt-qemu:x:64055:\n`,
  );

  const script = [
    "set -e",
    `mount --bind ${etc} /etc/libvirt`,
    `mount --bind ${join(dir, "passwd")} /etc/passwd`,
    `mount --bind ${join(dir, "group")} /etc/group`,
    ...OVERLAID.map(
      (d) =>
        `mount -t overlay overlay -o lowerdir=/${d},upperdir=${join(dir, "upper", d)},workdir=${join(dir, "work", d)} /${d}`,
    ),
    `exec /usr/sbin/libvirtd ${tcp ? "--listen" : ""}`,
  ].join("\n");
  const argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script];
  const cmd = opts.netns === undefined ? argv : ["ip", "netns", "exec", opts.netns, ...argv];
  const socketPath = join(sock, "libvirt-sock");
  let proc = { child: undefined as ChildProcess | undefined, exited: true };

  const launch = async () => {
    rmSync(socketPath, { force: true });
    const out = openSync(join(dir, "stdout.log"), "a");
    const child = spawn(cmd[0] as string, cmd.slice(1), { stdio: ["ignore", out, out] });
    const p = { child, exited: false };
    child.on("exit", () => {
      p.exited = true;
    });
    proc = p;
    const deadline = Date.now() + 20_000;
    while (!existsSync(socketPath)) {
      if (p.exited) throw new Error(`libvirtd exited at start:\n${daemon.log()}`);
      if (Date.now() > deadline)
        throw new Error(`libvirtd did not create its socket within 20 s:\n${daemon.log()}`);
      await sleep(50);
    }
  };
  // SIGTERM, then SIGKILL after 5 s. qemu processes are not touched (they outlive libvirtd anyway).
  const terminate = async () => {
    const p = proc;
    if (p.exited || p.child === undefined) return;
    p.child.kill("SIGTERM");
    const deadline = Date.now() + 5000;
    while (!p.exited && Date.now() < deadline) await sleep(50);
    if (!p.exited) p.child.kill("SIGKILL");
    while (!p.exited) await sleep(20);
  };

  const daemon: Daemon = {
    dir,
    uri: `qemu:///system?socket=${socketPath}`,
    tcpUri: tcp ? `qemu+tcp://${opts.address}/system` : undefined,
    log: () => {
      const parts: string[] = [];
      for (const f of [join(dir, "stdout.log"), join(dir, "upper/var/log/libvirt/libvirtd.log")]) {
        if (existsSync(f)) parts.push(readFileSync(f, "utf8").split("\n").slice(-40).join("\n"));
      }
      return parts.join("\n");
    },
    pause: () => {
      proc.child?.kill("SIGSTOP");
    },
    resume: () => {
      proc.child?.kill("SIGCONT");
    },
    restart: async () => {
      await terminate();
      await launch();
    },
    stop: async () => {
      killQemus(dir);
      proc.child?.kill("SIGCONT");
      await terminate();
      killQemus(dir);
      // The mount namespace goes away with its last process; retry while it is being torn down.
      rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    },
  };
  try {
    await launch();
  } catch (err) {
    await daemon.stop();
    throw err;
  }
  return daemon;
}

/** Kills the qemu processes the daemon started (they outlive libvirtd, which daemonizes them). */
function killQemus(dir: string): void {
  const pids = join(dir, "upper/run/libvirt/qemu");
  if (!existsSync(pids)) return;
  for (const f of readdirSync(pids)) {
    if (!f.endsWith(".pid")) continue;
    const pid = Number.parseInt(readFileSync(join(pids, f), "utf8").trim(), 10);
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // already gone
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Two network namespaces joined by a veth pair, with 10.88.0.1 and 10.88.0.2 inside them only. */
export interface NetPair {
  readonly a: { readonly ns: string; readonly address: string };
  readonly b: { readonly ns: string; readonly address: string };
  remove(): void;
}

export function createNetPair(): NetPair {
  // Unique per call (test files may run side by side); veth names must stay within 15 characters.
  const tag = `${process.pid % 100000}${randomBytes(2).toString("hex")}`;
  const a = { ns: `zsha-lv${tag}a`, address: "10.88.0.1" };
  const b = { ns: `zsha-lv${tag}b`, address: "10.88.0.2" };
  const ip = (...args: string[]) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
  const remove = () => {
    for (const ns of [a.ns, b.ns]) {
      try {
        ip("netns", "del", ns);
      } catch {
        // not there
      }
    }
  };
  remove();
  try {
    ip("netns", "add", a.ns);
    ip("netns", "add", b.ns);
    ip("link", "add", `zlv${tag}a`, "type", "veth", "peer", "name", `zlv${tag}b`);
    ip("link", "set", `zlv${tag}a`, "netns", a.ns);
    ip("link", "set", `zlv${tag}b`, "netns", b.ns);
    for (const [side, dev] of [
      [a, `zlv${tag}a`],
      [b, `zlv${tag}b`],
    ] as const) {
      ip("-n", side.ns, "addr", "add", `${side.address}/24`, "dev", dev);
      ip("-n", side.ns, "link", "set", dev, "up");
      ip("-n", side.ns, "link", "set", "lo", "up");
    }
  } catch (err) {
    remove();
    throw err;
  }
  return { a, b, remove };
}

/** A diskless 64 MiB TCG guest: enough for lifecycle and migration (SeaBIOS keeps it running). */
export function tinyGuestXml(name: string): string {
  return `<domain type="qemu">
  <name>${name}</name>
  <memory unit="MiB">64</memory>
  <vcpu>1</vcpu>
  <os><type arch="x86_64" machine="pc">hvm</type></os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel>
    <memballoon model="none"/>
  </devices>
</domain>`;
}
