// The agent's Prometheus metrics (prom-client, on a private registry so nothing else leaks in): Raft role,
// term, commit and applied index, peers' last contact, owner lease remaining, MN-VM state and node, and
// failover/migration counts. HA code feeds them through the setters; a Member, if attached, is read at
// every scrape so the Raft figures are never stale.

import { Counter, Gauge, Registry } from "prom-client";
import type { LogSinkStats } from "../log/safe-destination.js";

/** What the metrics read from a running member (a structural slice of src/server/member.ts's Member). */
export interface MemberSource {
  readonly name: string;
  status(): {
    term: bigint | number;
    commit: bigint | number;
    applied: bigint | number;
    lastIndex: bigint | number;
    state: string;
    lead: string;
  };
  /** performance.now() of the last message from each peer. */
  readonly lastHeard: ReadonlyMap<string, number>;
}

export const RAFT_ROLES = ["follower", "pre-candidate", "candidate", "leader"] as const;

export class AgentMetrics {
  readonly registry = new Registry();
  private readonly role: Gauge;
  private readonly term: Gauge;
  private readonly commit: Gauge;
  private readonly applied: Gauge;
  private readonly lastIndex: Gauge;
  private readonly lastContact: Gauge;
  private readonly leaseRemaining: Gauge;
  private readonly mnvmState: Gauge;
  private readonly mnvmNode: Gauge;
  private readonly failovers: Counter;
  private readonly migrations: Counter;
  private readonly logWritten: Gauge;
  private readonly logDropped: Gauge;
  private member: MemberSource | undefined;
  private logStats: (() => LogSinkStats) | undefined;
  private ownerLease: (() => number | undefined) | undefined;
  private readonly now: () => number;

  /** `now` is performance.now()-like, the clock Member.lastHeard is kept in. */
  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? (() => performance.now());
    const r = [this.registry];
    this.role = new Gauge({
      name: "zsha_raft_role",
      help: "1 for this member's current Raft role, 0 for the others",
      labelNames: ["role"],
      registers: r,
    });
    this.term = new Gauge({ name: "zsha_raft_term", help: "Current Raft term", registers: r });
    this.commit = new Gauge({
      name: "zsha_raft_commit_index",
      help: "Highest committed log index",
      registers: r,
    });
    this.applied = new Gauge({
      name: "zsha_raft_applied_index",
      help: "Highest log index applied to the state machine",
      registers: r,
    });
    this.lastIndex = new Gauge({
      name: "zsha_raft_last_index",
      help: "Last index in the local log",
      registers: r,
    });
    this.lastContact = new Gauge({
      name: "zsha_raft_peer_last_contact_seconds",
      help: "Seconds since the last message from each peer",
      labelNames: ["peer"],
      registers: r,
    });
    this.leaseRemaining = new Gauge({
      name: "zsha_ha_owner_lease_remaining_seconds",
      help: "Seconds left on the MN-VM owner lease (0 when none is held)",
      registers: r,
    });
    this.mnvmState = new Gauge({
      name: "zsha_mnvm_state",
      help: "1 for the MN-VM's current state",
      labelNames: ["state"],
      registers: r,
    });
    this.mnvmNode = new Gauge({
      name: "zsha_mnvm_node",
      help: "1 for the node the MN-VM runs on",
      labelNames: ["node"],
      registers: r,
    });
    this.failovers = new Counter({
      name: "zsha_ha_failovers_total",
      help: "MN-VM failovers started by this agent",
      registers: r,
    });
    this.migrations = new Counter({
      name: "zsha_ha_migrations_total",
      help: "MN-VM live migrations by result",
      labelNames: ["result"],
      registers: r,
    });
    this.logWritten = new Gauge({
      name: "zsha_log_lines_written",
      help: "Log lines written to the log file since start",
      registers: r,
    });
    this.logDropped = new Gauge({
      name: "zsha_log_lines_dropped",
      help: "Log lines dropped since start (log disk full, read-only or too slow)",
      registers: r,
    });
  }

  /** Reads Raft figures and peers' last contact from `member` at every scrape. */
  attachMember(member: MemberSource): void {
    this.member = member;
  }

  /** Exports the logger's written/dropped counts at every scrape. */
  attachLog(stats: () => LogSinkStats): void {
    this.logStats = stats;
  }

  /**
   * Reads the owner lease's remaining seconds at every scrape (see owner-lease.ts); undefined removes the
   * gauge, since only the Raft leader knows lease deadlines.
   */
  attachOwnerLease(remaining: () => number | undefined): void {
    this.ownerLease = remaining;
  }

  setRaft(s: {
    term: bigint | number;
    commit: bigint | number;
    applied: bigint | number;
    state: string;
  }): void {
    this.term.set(Number(s.term));
    this.commit.set(Number(s.commit));
    this.applied.set(Number(s.applied));
    for (const r of RAFT_ROLES) this.role.set({ role: r }, r === s.state ? 1 : 0);
  }

  setPeerLastContact(peer: string, seconds: number): void {
    this.lastContact.set({ peer }, seconds);
  }

  setOwnerLeaseRemaining(seconds: number): void {
    this.leaseRemaining.set(Math.max(0, seconds));
  }

  /** The MN-VM's state (e.g. running, stopped, migrating) and the node it is on ('' when nowhere). */
  setMnvm(state: string, node: string): void {
    this.mnvmState.reset();
    this.mnvmState.set({ state }, 1);
    this.mnvmNode.reset();
    if (node) this.mnvmNode.set({ node }, 1);
  }

  countFailover(): void {
    this.failovers.inc();
  }

  countMigration(result: "ok" | "failed"): void {
    this.migrations.inc({ result });
  }

  /** The Prometheus text exposition, refreshed from the attached member and log. */
  async scrape(): Promise<string> {
    this.collect();
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  private collect(): void {
    const m = this.member;
    if (m) {
      const s = m.status();
      this.setRaft(s);
      this.lastIndex.set(Number(s.lastIndex));
      const now = this.now();
      this.lastContact.reset();
      for (const [peer, at] of m.lastHeard) {
        if (peer !== m.name) this.lastContact.set({ peer }, Math.max(0, (now - at) / 1000));
      }
    }
    if (this.ownerLease) {
      const left = this.ownerLease();
      if (left === undefined) this.leaseRemaining.reset();
      else this.setOwnerLeaseRemaining(left);
    }
    if (this.logStats) {
      const l = this.logStats();
      this.logWritten.set(l.written);
      this.logDropped.set(l.dropped);
    }
  }
}
