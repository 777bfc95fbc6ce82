// Clients of the simulated cluster. Writers propose through a random member and count a write as
// acknowledged when that member applies it. Readers use ReadIndex and check the value they read is not
// older than any write acknowledged before the read began (linearizability of reads).

import { type Index, type NodeId, ProposalError, type ReadState } from "../../src/raft/index.js";
import { encodeWrite, type WriteCommand } from "./kv-machine.js";
import type { SimRaftNode } from "./raft-node.js";
import type { Rng } from "./rng.js";
import type { Scheduler } from "./scheduler.js";

export const KEYS = ["a", "b", "c"];
const OP_TIMEOUT_MS = 3000;

interface PendingWrite {
  readonly cmd: WriteCommand;
  readonly node: NodeId;
  readonly incarnation: number;
  readonly done: () => void;
}

interface PendingRead {
  readonly key: string;
  readonly node: NodeId;
  readonly incarnation: number;
  /** The highest log index of a write to `key` acknowledged before the read began. */
  readonly mustSee: number;
  readIndex?: Index;
  readonly done: () => void;
}

export interface WorkloadWorld {
  readonly sched: Scheduler;
  liveNodes(): SimRaftNode[];
  violation(what: string): void;
  trace(what: string): void;
}

export class Workload {
  /** Highest index of an acknowledged write per key. */
  readonly acked = new Map<string, number>();
  readonly stats = { writes: 0, writesAcked: 0, writesRefused: 0, reads: 0, readsServed: 0, readsRefused: 0 };
  private writes = new Map<string, PendingWrite>();
  private reads = new Map<string, PendingRead>();
  private seq = 0;
  private stopped = false;

  constructor(
    private readonly world: WorkloadWorld,
    private readonly rng: Rng,
  ) {}

  start(clients: number): void {
    for (let c = 1; c <= clients; c++) this.loop(c);
  }

  stop(): void {
    this.stopped = true;
  }

  private loop(client: number): void {
    if (this.stopped) return;
    const next = () => this.world.sched.after(this.rng.real(5, 150), () => this.loop(client));
    const nodes = this.world.liveNodes();
    if (nodes.length === 0) {
      next();
      return;
    }
    const node = this.rng.pick(nodes);
    const key = this.rng.pick(KEYS);
    let finished = false;
    const done = () => {
      if (finished) return;
      finished = true;
      next();
    };
    if (this.rng.chance(0.6)) this.write(client, node, key, done);
    else this.read(client, node, key, done);
    if (!finished) this.world.sched.after(OP_TIMEOUT_MS, done);
  }

  write(client: number, node: SimRaftNode, key: string, done: () => void): void {
    const cmd: WriteCommand = { client, seq: ++this.seq, key, value: `v${this.seq}` };
    const id = `${client}/${cmd.seq}`;
    this.stats.writes++;
    this.writes.set(id, { cmd, node: node.id, incarnation: node.incarnation, done });
    try {
      node.withNode((rn) => rn.propose(encodeWrite(cmd)));
    } catch (e) {
      if (!(e instanceof ProposalError)) throw e;
      this.writes.delete(id);
      this.stats.writesRefused++;
      done();
      return;
    }
    this.world.sched.after(OP_TIMEOUT_MS, () => this.writes.delete(id));
  }

  read(client: number, node: SimRaftNode, key: string, done: () => void): void {
    const id = `r${client}/${++this.seq}`;
    this.stats.reads++;
    const pending: PendingRead = {
      key,
      node: node.id,
      incarnation: node.incarnation,
      mustSee: this.acked.get(key) ?? 0,
      done,
    };
    this.reads.set(id, pending);
    try {
      node.withNode((rn) => rn.readIndex(new TextEncoder().encode(id)));
    } catch (e) {
      if (!(e instanceof ProposalError)) throw e;
      this.reads.delete(id);
      this.stats.readsRefused++;
      done();
      return;
    }
    this.world.sched.after(OP_TIMEOUT_MS, () => this.reads.delete(id));
  }

  /** A member applied a write: acknowledge it if it was proposed through that member in this life. */
  onApplied(node: SimRaftNode, cmd: WriteCommand, at: Index): void {
    const id = `${cmd.client}/${cmd.seq}`;
    const w = this.writes.get(id);
    if (w && w.node === node.id && w.incarnation === node.incarnation) {
      this.writes.delete(id);
      this.stats.writesAcked++;
      this.acked.set(cmd.key, Math.max(this.acked.get(cmd.key) ?? 0, at));
      w.done();
    }
    this.serveReads(node);
  }

  onReadState(node: SimRaftNode, rs: ReadState): void {
    const id = new TextDecoder().decode(rs.requestCtx);
    const r = this.reads.get(id);
    if (!r || r.node !== node.id || r.incarnation !== node.incarnation) return;
    r.readIndex = rs.index;
    this.serveReads(node);
  }

  private serveReads(node: SimRaftNode): void {
    for (const [id, r] of this.reads) {
      if (r.node !== node.id || r.readIndex === undefined || r.incarnation !== node.incarnation) continue;
      if (node.sm.applied < r.readIndex) continue;
      this.reads.delete(id);
      this.stats.readsServed++;
      const seen = node.sm.get(r.key)?.modIndex ?? 0;
      if (seen < r.mustSee) {
        this.world.violation(
          `linearizability: read of ${r.key} on ${node.id} (read index ${r.readIndex}) saw the write at ${seen}, ` +
            `but the write at ${r.mustSee} was acknowledged before the read began`,
        );
      }
      r.done();
    }
  }

  /** After the cluster healed: every live voter holds every acknowledged write. */
  checkDurability(voters: SimRaftNode[]): void {
    for (const n of voters) {
      for (const [key, at] of this.acked) {
        const seen = n.sm.get(key)?.modIndex ?? 0;
        if (seen < at)
          this.world.violation(`lost write: ${n.id} shows ${key} written at ${seen}, acknowledged at ${at}`);
      }
    }
  }
}
