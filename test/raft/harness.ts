// A tiny deterministic in-process harness for the Raft core's unit and paper tests: N RawNodes over
// MemoryStorage, a seeded PRNG, and a message bus the test drives step by step. Nothing here runs on its
// own: a test ticks, delivers and processes Ready explicitly, so every scenario reads like a transcript.

import {
  type ConfChange,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Index,
  index,
  MemoryStorage,
  type Message,
  type MessageType,
  message,
  type NodeId,
  nodeId,
  type RaftConfig,
  RawNode,
  type ReadState,
  type Snapshot,
  StateType,
  type Status,
  type Term,
  term,
} from "../../src/raft/index.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

export const bytes = (s: string): Uint8Array => enc.encode(s);
export const text = (b: Uint8Array): string => dec.decode(b);
export const ids = (...names: string[]): NodeId[] => names.map(nodeId);

/** mulberry32: a small, well-distributed 32-bit PRNG; one seed decides every randomized timeout. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type NodeOptions = Partial<Omit<RaftConfig, "id" | "storage">>;

export const DEFAULTS = {
  electionTick: 10,
  heartbeatTick: 1,
  maxSizePerMsg: Number.POSITIVE_INFINITY,
  maxInflightMsgs: 256,
  checkQuorum: false,
  preVote: false,
} as const;

/** Builds a config for one node; `random` defaults to a PRNG seeded from `seed`. */
export function config(id: string, storage: MemoryStorage, opts: NodeOptions = {}, seed = 1): RaftConfig {
  return { ...DEFAULTS, random: seededRandom(seed), ...opts, id: nodeId(id), storage };
}

/** An entry for building logs by hand. */
export function entry(i: number, t: number, data = ""): Entry {
  return { index: index(i), term: term(t), type: EntryType.Normal, data: bytes(data) };
}

/**
 * A founding member's storage (snapshot at index 1, term 1 holding `voters`) followed by one entry per
 * element of `terms`, at indexes 2, 3, ..., and the given hard state term.
 */
export function storageWithLog(voters: string[], terms: number[], hardTerm?: number): MemoryStorage {
  const s = MemoryStorage.bootstrap({ voters: ids(...voters), learners: [] });
  s.append(terms.map((t, k) => entry(k + 2, t, `e${k + 2}`)));
  const last = terms[terms.length - 1] ?? 1;
  s.setHardState({ term: term(hardTerm ?? last), vote: nodeId(""), commit: index(1) });
  return s;
}

/** A single RawNode driven by hand: step messages in, read everything it wants sent. */
export class Solo {
  readonly node: RawNode;
  constructor(
    readonly storage: MemoryStorage,
    id = "a",
    opts: NodeOptions = {},
  ) {
    this.node = new RawNode(config(id, storage, opts));
  }

  get raft() {
    return this.node.raft;
  }

  step(fields: Partial<Message> & Pick<Message, "type">): void {
    this.node.step(message({ to: this.raft.id, ...fields }));
  }

  /** Runs one Ready cycle (persisting into the storage) and returns the messages it would send. */
  drain(): Message[] {
    const out: Message[] = [];
    while (this.node.hasReady()) {
      const rd = this.node.ready();
      persist(this.storage, rd.snapshot, rd.entries, rd.hardState);
      out.push(...rd.messages);
      this.node.advance();
    }
    return out;
  }

  /** The log's terms from the first index on, e.g. [1, 1, 2]. */
  terms(): number[] {
    return this.raft.log.allEntries().map((e) => e.term);
  }
}

function persist(s: MemoryStorage, snap: Snapshot | undefined, ents: readonly Entry[], hs?: HardState): void {
  if (snap) s.applySnapshot(snap);
  s.append(ents);
  if (hs) s.setHardState(hs);
}

/**
 * One line per message, for transcript tests, e.g. `a->b App t2 prev=(1,1) commit=1 [2@2]`.
 * Only the fields that matter for the message type are shown.
 */
export function formatMessage(m: Message): string {
  const head = `${m.from}->${m.to} ${m.type} t${m.term}`;
  const ents = m.entries
    .map((e) => `${e.index}@${e.term}${e.data.length ? `:${text(e.data)}` : ""}`)
    .join(" ");
  switch (m.type) {
    case "App":
      return `${head} prev=(${m.index},${m.logTerm}) commit=${m.commit} [${ents}]`;
    case "AppResp":
      return m.reject
        ? `${head} reject=${m.index} hint=(${m.rejectHint},${m.logTerm})`
        : `${head} index=${m.index}`;
    case "Vote":
    case "PreVote":
      return `${head} last=(${m.index},${m.logTerm})`;
    case "VoteResp":
    case "PreVoteResp":
      return `${head}${m.reject ? " rejected" : " granted"}`;
    case "Heartbeat":
      return `${head} commit=${m.commit}`;
    case "Prop":
      return `${head} [${ents}]`;
    default:
      return head;
  }
}

/** One member: its durable storage survives crash(); everything else is rebuilt on restart(). */
export interface Member {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  node: RawNode | undefined;
  /** The state machine: every applied Normal entry with data, by index. */
  applied: Map<number, string>;
  appliedIndex: number;
  readStates: ReadState[];
  opts: NodeOptions;
  seed: number;
}

interface StateMachineImage {
  readonly applied: [number, string][];
}

export interface ClusterOptions extends NodeOptions {
  /** Founding voters, bootstrapped with the same configuration. */
  readonly voters: string[];
  readonly seed?: number;
  /** Per-node overrides (e.g. a different `random`). */
  readonly perNode?: Record<string, NodeOptions>;
}

const link = (from: NodeId, to: NodeId) => `${from}->${to}`;

export class Cluster {
  readonly members = new Map<NodeId, Member>();
  /** Messages sent and not yet delivered, in send order. */
  inbox: Message[] = [];
  /** Every message ever delivered (for counting rejections, appends, snapshots...). */
  readonly delivered: Message[] = [];
  /** Every message ever dropped by a cut link or a drop rule. */
  readonly droppedLog: Message[] = [];
  private readonly cut = new Set<string>();
  private dropRules: ((m: Message) => boolean)[] = [];
  private readonly opts: ClusterOptions;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    const cs: ConfState = { voters: ids(...opts.voters), learners: [] };
    opts.voters.forEach((v, k) => {
      this.addMember(v, MemoryStorage.bootstrap(cs), (opts.seed ?? 1) * 1000 + k);
    });
  }

  /** A joiner: empty storage, no configuration; it learns everything from the leader. */
  join(id: string): Member {
    return this.addMember(id, new MemoryStorage(), (this.opts.seed ?? 1) * 1000 + this.members.size);
  }

  private addMember(id: string, storage: MemoryStorage, seed: number): Member {
    const { voters: _v, seed: _s, perNode, ...base } = this.opts;
    const opts = { ...base, ...(perNode?.[id] ?? {}) };
    const m: Member = {
      id: nodeId(id),
      storage,
      node: undefined,
      applied: new Map(),
      appliedIndex: 0,
      readStates: [],
      opts,
      seed,
    };
    this.members.set(m.id, m);
    this.start(m);
    return m;
  }

  private start(m: Member): void {
    const snap = m.storage.snapshot();
    m.applied = restoreImage(snap);
    m.appliedIndex = snap.meta.index;
    m.node = new RawNode(config(m.id, m.storage, m.opts, m.seed));
  }

  member(id: string): Member {
    const m = this.members.get(nodeId(id));
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  node(id: string): RawNode {
    const n = this.member(id).node;
    if (!n) throw new Error(`${id} is down`);
    return n;
  }

  status(id: string): Status {
    return this.node(id).status();
  }

  state(id: string): StateType {
    return this.status(id).state;
  }

  term(id: string): Term {
    return this.status(id).term;
  }

  /** The members that currently believe they lead, with their terms. */
  leaders(): { id: NodeId; term: Term }[] {
    const out: { id: NodeId; term: Term }[] = [];
    for (const m of this.members.values()) {
      if (m.node?.status().state === StateType.Leader) out.push({ id: m.id, term: m.node.status().term });
    }
    return out;
  }

  /** The single live leader of the highest term, or undefined. */
  leader(): NodeId | undefined {
    const ls = this.leaders().sort((a, b) => b.term - a.term);
    return ls[0]?.id;
  }

  // ---- inputs -----------------------------------------------------------------------------------------

  tick(id: string, n = 1): void {
    for (let k = 0; k < n; k++) {
      this.node(id).tick();
      this.processReady(id);
    }
  }

  /** Ticks every live member `n` times, delivering and processing everything after each round. */
  tickAll(n = 1): void {
    for (let k = 0; k < n; k++) {
      for (const m of this.members.values()) if (m.node) m.node.tick();
      this.stabilize();
    }
  }

  campaign(id: string): void {
    this.node(id).campaign();
    this.processReady(id);
  }

  propose(id: string, data: string): void {
    this.node(id).propose(bytes(data));
    this.processReady(id);
  }

  proposeConfChange(id: string, cc: ConfChange): void {
    this.node(id).proposeConfChange(cc);
    this.processReady(id);
  }

  readIndex(id: string, ctx: string): void {
    this.node(id).readIndex(bytes(ctx));
    this.processReady(id);
  }

  /** The contexts of the reads served on `id` so far, with their indexes. */
  reads(id: string): { ctx: string; index: Index }[] {
    return this.member(id).readStates.map((rs) => ({ ctx: text(rs.requestCtx), index: rs.index }));
  }

  // ---- the Ready contract -----------------------------------------------------------------------------

  /** One Ready cycle on `id`: persist, then send, then apply, then advance. Returns whether there was one. */
  processReady(id: string | NodeId): boolean {
    const m = this.member(id);
    const rn = m.node;
    if (!rn?.hasReady()) return false;
    const rd = rn.ready();
    // 1. Persist (MemoryStorage writes are synchronous, so this is also the fsync).
    persist(m.storage, rd.snapshot, rd.entries, rd.hardState);
    // 2. Send.
    this.inbox.push(...rd.messages);
    // 3. Apply.
    if (rd.snapshot) {
      m.applied = restoreImage(rd.snapshot);
      m.appliedIndex = rd.snapshot.meta.index;
    }
    for (const e of rd.committedEntries) {
      if (e.index <= m.appliedIndex) continue;
      if (e.type === EntryType.Normal && e.data.length > 0) m.applied.set(e.index, text(e.data));
      m.appliedIndex = e.index;
    }
    m.readStates.push(...rd.readStates);
    // 4. Advance.
    rn.advance();
    return true;
  }

  /** Processes Ready on every member until none has any; does not deliver. */
  processAll(): void {
    let again = true;
    while (again) {
      again = false;
      for (const m of this.members.values()) if (this.processReady(m.id)) again = true;
    }
  }

  // ---- the network ------------------------------------------------------------------------------------

  /** Messages waiting in the inbox that match `filter`. */
  pending(filter: (m: Message) => boolean = () => true): Message[] {
    return this.inbox.filter(filter);
  }

  pendingOfType(type: MessageType): Message[] {
    return this.pending((m) => m.type === type);
  }

  private blocked(m: Message): boolean {
    return this.cut.has(link(m.from, m.to)) || this.dropRules.some((r) => r(m));
  }

  /**
   * Delivers the messages now in the inbox that match `filter` (in order), leaving the rest queued.
   * Messages on cut links are dropped. Replies go to the inbox; call processReady to emit them.
   * Returns how many were delivered.
   */
  deliver(filter: (m: Message) => boolean = () => true): number {
    const now = this.inbox.filter(filter);
    this.inbox = this.inbox.filter((m) => !filter(m));
    let n = 0;
    for (const msg of now) {
      const dest = this.members.get(msg.to);
      if (this.blocked(msg) || !dest?.node) {
        this.droppedLog.push(msg);
        continue;
      }
      this.delivered.push(msg);
      dest.node.step(msg);
      n++;
    }
    return n;
  }

  /** Delivers everything queued and returns it as transcript lines (then processes every Ready). */
  round(): string[] {
    const lines = this.inbox.filter((m) => !this.blocked(m)).map(formatMessage);
    this.deliver();
    this.processAll();
    return lines;
  }

  /** Deletes queued messages that match `filter` (they are lost). */
  drop(filter: (m: Message) => boolean): Message[] {
    const gone = this.inbox.filter(filter);
    this.inbox = this.inbox.filter((m) => !filter(m));
    this.droppedLog.push(...gone);
    return gone;
  }

  /** Delivers and processes until the network is quiet (no Ready anywhere, empty inbox). */
  stabilize(maxRounds = 10_000): void {
    for (let r = 0; r < maxRounds; r++) {
      this.processAll();
      if (this.inbox.length === 0) return;
      this.deliver();
    }
    throw new Error(`network did not settle within ${maxRounds} rounds`);
  }

  /** Drops every future message matching `rule` until heal(). */
  dropWhere(rule: (m: Message) => boolean): void {
    this.dropRules.push(rule);
  }

  cutLink(from: string, to: string, bothWays = true): void {
    this.cut.add(link(nodeId(from), nodeId(to)));
    if (bothWays) this.cut.add(link(nodeId(to), nodeId(from)));
  }

  /** Cuts every link between `id` and the other members. */
  isolate(id: string): void {
    for (const other of this.members.keys()) if (other !== id) this.cutLink(id, other);
  }

  /** Splits the cluster into groups that cannot talk to each other. */
  partition(...groups: string[][]): void {
    for (const g of groups)
      for (const h of groups) {
        if (g === h) continue;
        for (const a of g) for (const b of h) this.cutLink(a, b, false);
      }
  }

  heal(): void {
    this.cut.clear();
    this.dropRules = [];
  }

  // ---- crashes ----------------------------------------------------------------------------------------

  /** Power loss: the RawNode and state machine are gone; the MemoryStorage (what was persisted) stays. */
  crash(id: string): void {
    const m = this.member(id);
    m.node = undefined;
    this.inbox = this.inbox.filter((msg) => msg.to !== m.id);
  }

  restart(id: string): void {
    this.start(this.member(id));
  }

  // ---- snapshots --------------------------------------------------------------------------------------

  /** Snapshots `id`'s state machine at its applied index and compacts its log up to it. */
  compact(id: string): Snapshot {
    const m = this.member(id);
    const image: StateMachineImage = { applied: [...m.applied] };
    const snap = m.storage.createSnapshot(
      index(m.appliedIndex),
      this.status(id).config,
      bytes(JSON.stringify(image)),
    );
    m.storage.compact(index(m.appliedIndex));
    return snap;
  }

  /** The applied values of `id`, in index order. */
  values(id: string): string[] {
    return [...this.member(id).applied.entries()].sort((a, b) => a[0] - b[0]).map(([, v]) => v);
  }

  /** Terms of every entry in `id`'s log from its first index. */
  logTerms(id: string): number[] {
    return this.node(id)
      .raft.log.allEntries()
      .map((e) => e.term);
  }

  /** Elects `id` at once (campaign + stabilize) and checks it won. */
  elect(id: string): void {
    this.campaign(id);
    this.stabilize();
    if (this.state(id) !== StateType.Leader) throw new Error(`${id} did not win: ${this.state(id)}`);
  }
}

function restoreImage(snap: Snapshot): Map<number, string> {
  if (snap.data.length === 0) return new Map();
  const image = JSON.parse(text(snap.data)) as StateMachineImage;
  return new Map(image.applied);
}
