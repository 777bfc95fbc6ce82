/**
 * Network faults applied at the switch namespace, invisible to the hosts' own firewall and tc state:
 * nft bridge rules for drops, pulling the switch port for a cable cut, and — since this kernel has no
 * sch_netem — iptables NFQUEUE in the switch plus a small userspace verdict delayer (nfq-delay.py) for
 * latency. Ported from the verified recipe fault.sh.
 */
import type { ChildProcess } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Hosts } from "./hosts.js";
import { waitFor } from "./run.js";

const DELAYER = join(dirname(fileURLToPath(import.meta.url)), "nfq-delay.py");

const TABLE = `table bridge zfault {
  chain pfwd { type filter hook forward priority 0; policy accept; }
  chain pin  { type filter hook input   priority 0; policy accept; }
  chain pout { type filter hook output  priority 0; policy accept; }
}
`;

export class Faults {
  private readonly delayers = new Map<string, ChildProcess>();

  constructor(private readonly hosts: Hosts) {}

  /** Symmetric: `h` is cut from everybody, ARP and the switch's own services (Ceph) included. */
  async isolate(h: string): Promise<void> {
    const p = this.hosts.port(h);
    await this.rules([
      `add rule bridge zfault pfwd iifname ${p} counter drop`,
      `add rule bridge zfault pfwd oifname ${p} counter drop`,
      `add rule bridge zfault pin iifname ${p} counter drop`,
      `add rule bridge zfault pout oifname ${p} counter drop`,
    ]);
  }

  /** `h`'s outgoing IPv4 to other hosts is dropped; what others send it still arrives (ARP kept). */
  async onewayOut(h: string): Promise<void> {
    await this.rules([
      `add rule bridge zfault pfwd iifname ${this.hosts.port(h)} ether type ip counter drop`,
    ]);
  }

  /** IPv4 from other hosts towards `h` is dropped. */
  async onewayIn(h: string): Promise<void> {
    await this.rules([
      `add rule bridge zfault pfwd oifname ${this.hosts.port(h)} ether type ip counter drop`,
    ]);
  }

  /** Symmetric partition between two hosts only (both still reach the switch and Ceph). */
  async cut(a: string, b: string): Promise<void> {
    const pa = this.hosts.port(a);
    const pb = this.hosts.port(b);
    await this.rules([
      `add rule bridge zfault pfwd iifname ${pa} oifname ${pb} counter drop`,
      `add rule bridge zfault pfwd iifname ${pb} oifname ${pa} counter drop`,
    ]);
  }

  /** Random loss of `pct` % in each direction of `h`'s traffic (nft numgen at the switch). */
  async loss(h: string, pct: number): Promise<void> {
    checkPct("loss pct", pct);
    const p = this.hosts.port(h);
    if (pct === 0) return;
    // numgen's modulus range is 0..99: 100 % is a plain drop.
    const match = pct >= 100 ? "" : ` numgen random mod 100 < ${pct}`;
    await this.rules([
      `add rule bridge zfault pfwd iifname ${p}${match} counter drop`,
      `add rule bridge zfault pfwd oifname ${p}${match} counter drop`,
    ]);
  }

  /**
   * Adds `ms` ± `jitterMs` of latency and `lossPct` % loss to each direction of `h`'s IPv4 traffic through
   * the switch (so a round trip to another host gets twice the delay). One delayer per host.
   */
  async delay(h: string, ms: number, jitterMs = 0, lossPct = 0): Promise<void> {
    if (!(ms >= 0) || !(jitterMs >= 0) || jitterMs > ms)
      throw new Error("faults: delay needs 0 <= jitterMs <= ms");
    checkPct("delay lossPct", lossPct);
    if (this.delayers.has(h)) throw new Error(`faults: ${h} already has a delay; clear() first`);
    // Bridged frames only reach iptables with br_netfilter's hook on (per network namespace).
    await this.hosts
      .switchExec(["sh", "-ec", "echo 1 > /proc/sys/net/bridge/bridge-nf-call-iptables"])
      .catch((err) => {
        throw new Error(
          `faults: delay needs br_netfilter (bridge-nf-call-iptables) in the kernel: ${err.message}`,
        );
      });
    const queue = this.hosts.names().indexOf(h) + 1;
    const ip = this.hosts.ip(h);
    const logPath = join(this.hosts.dir, "state", `nfq-${h}.log`);
    const log = openSync(logPath, "w");
    const child = this.hosts.switchSpawn(
      ["/usr/bin/python3", DELAYER, String(queue), String(ms), String(jitterMs), String(lossPct)],
      {
        stdio: ["ignore", log, log],
      },
    );
    closeSync(log);
    this.delayers.set(h, child);
    // The delayer binds the queue before rules send packets to it (--queue-bypass covers the gap anyway).
    await waitFor(
      "the NFQUEUE delayer to bind",
      async () => {
        if (child.exitCode !== null)
          throw new Error(`nfq-delay.py exited: ${await readFile(logPath, "utf8")}`);
        return (await readFile(logPath, "utf8")).includes("queue=");
      },
      5_000,
    );
    for (const dir of ["-d", "-s"]) {
      await this.hosts.switchExec([
        ...["iptables", "-A", "FORWARD", dir, ip, "-j", "NFQUEUE"],
        ...["--queue-num", String(queue), "--queue-bypass"],
      ]);
    }
  }

  /** Pulls (`down`) or replugs (`up`) the host's cable at the switch. */
  async link(h: string, state: "up" | "down"): Promise<void> {
    await this.hosts.switchExec(["ip", "link", "set", this.hosts.port(h), state]);
  }

  /** Removes every fault: nft table, iptables rules, delayers, pulled cables. */
  async clear(): Promise<void> {
    await this.hosts.switchExec(["nft", "delete", "table", "bridge", "zfault"], { reject: false });
    await this.hosts.switchExec(["iptables", "-F", "FORWARD"], { reject: false });
    for (const [h, child] of this.delayers) {
      child.kill("SIGKILL");
      this.delayers.delete(h);
    }
    for (const h of this.hosts.names()) {
      if (this.hosts.isUp(h)) await this.link(h, "up");
    }
  }

  private async rules(lines: readonly string[]): Promise<void> {
    await this.hosts.switchExec(["nft", "-f", "-"], { input: `${TABLE}${lines.join("\n")}\n` });
  }
}

function checkPct(field: string, pct: number): void {
  if (!(pct >= 0 && pct <= 100)) throw new Error(`faults: ${field} must be 0..100, got ${pct}`);
}
