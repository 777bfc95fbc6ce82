// Value types of the consensus core. Terms, indexes and node ids are distinct branded types so that the
// arithmetic-heavy code below cannot silently pass a term where an index is expected.

declare const termBrand: unique symbol;
declare const indexBrand: unique symbol;
declare const nodeIdBrand: unique symbol;

export type Term = number & { readonly [termBrand]: true };
export type Index = number & { readonly [indexBrand]: true };
export type NodeId = string & { readonly [nodeIdBrand]: true };

export const term = (n: number): Term => n as Term;
export const index = (n: number): Index => n as Index;
export const nodeId = (s: string): NodeId => s as NodeId;
/** No node: no vote cast, no leader known. */
export const NONE = "" as NodeId;

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  readonly term: Term;
  readonly index: Index;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be on stable storage before any message that depends on it leaves the node. */
export interface HardState {
  readonly term: Term;
  readonly vote: NodeId;
  readonly commit: Index;
}

export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

export interface SnapshotMeta {
  readonly index: Index;
  readonly term: Term;
  readonly confState: ConfState;
}

export interface Snapshot {
  readonly meta: SnapshotMeta;
  /** The state machine's serialized state as of meta.index (opaque to the core). */
  readonly data: Uint8Array;
}

export enum MessageType {
  // Local messages: never sent over the network.
  Hup = "Hup",
  Beat = "Beat",
  CheckQuorum = "CheckQuorum",
  Unreachable = "Unreachable",
  SnapStatus = "SnapStatus",
  // Network messages.
  Prop = "Prop",
  App = "App",
  AppResp = "AppResp",
  Vote = "Vote",
  VoteResp = "VoteResp",
  PreVote = "PreVote",
  PreVoteResp = "PreVoteResp",
  Snap = "Snap",
  Heartbeat = "Heartbeat",
  HeartbeatResp = "HeartbeatResp",
  TransferLeader = "TransferLeader",
  TimeoutNow = "TimeoutNow",
  ReadIndex = "ReadIndex",
  ReadIndexResp = "ReadIndexResp",
}

export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
  /** App: term of the entry at `index` (the one preceding `entries`). Vote: candidate's last term. */
  readonly logTerm: Term;
  /** App: index preceding `entries`. Vote: candidate's last index. AppResp: last index accepted or rejected. */
  readonly index: Index;
  readonly entries: readonly Entry[];
  readonly commit: Index;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  /** AppResp rejection: the follower's guess of where the logs diverge (fast back-off). */
  readonly rejectHint: Index;
  /** ReadIndex request id, heartbeat read context, or the campaign kind of a transfer vote. */
  readonly context: Uint8Array;
}

export enum StateType {
  Follower = "follower",
  PreCandidate = "pre-candidate",
  Candidate = "candidate",
  Leader = "leader",
}

export interface SoftState {
  readonly lead: NodeId;
  readonly state: StateType;
}

/** A linearizable read may be served once the local state machine has applied `index`. */
export interface ReadState {
  readonly index: Index;
  readonly requestCtx: Uint8Array;
}

/**
 * One batch of work handed to the caller. The contract (see index.ts): persist `snapshot`, `entries` and
 * `hardState` (synchronously when `mustSync`), then send `messages`, then apply `snapshot` and
 * `committedEntries` to the state machine, then call `advance()`.
 */
export interface Ready {
  readonly softState?: SoftState;
  readonly hardState?: HardState;
  readonly entries: readonly Entry[];
  readonly snapshot?: Snapshot;
  readonly committedEntries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly readStates: readonly ReadState[];
  readonly mustSync: boolean;
}

const EMPTY = new Uint8Array(0);

/** A message with every optional field at its zero value. */
export function message(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    from: NONE,
    to: NONE,
    term: term(0),
    logTerm: term(0),
    index: index(0),
    entries: [],
    commit: index(0),
    reject: false,
    rejectHint: index(0),
    context: EMPTY,
    ...fields,
  };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

export function isLocalMessage(t: MessageType): boolean {
  return (
    t === MessageType.Hup ||
    t === MessageType.Beat ||
    t === MessageType.CheckQuorum ||
    t === MessageType.Unreachable ||
    t === MessageType.SnapStatus
  );
}

export function isResponseMessage(t: MessageType): boolean {
  return (
    t === MessageType.AppResp ||
    t === MessageType.VoteResp ||
    t === MessageType.PreVoteResp ||
    t === MessageType.HeartbeatResp ||
    t === MessageType.ReadIndexResp ||
    t === MessageType.Unreachable
  );
}

/** Approximate wire size of an entry, for flow control. */
export function entrySize(e: Entry): number {
  return e.data.length + 24;
}
