// Errors the core reports to its caller. Broken internal invariants are not errors: they are asserts that
// stop the process (a Raft node that continues after one may corrupt the replicated log).

export type ProposalRefusal =
  | "no-leader"
  | "transfer-in-progress"
  | "forwarding-disabled"
  | "not-a-member"
  | "conf-change-pending"
  | "learner-not-caught-up"
  | "invalid-conf-change";

/** A proposal, read or conf change that the core refused; nothing was appended. */
export class ProposalError extends Error {
  constructor(
    readonly reason: ProposalRefusal,
    message: string,
  ) {
    super(message);
    this.name = "ProposalError";
  }
}

/** Requested entries are older than the storage's first index (compacted into a snapshot). */
export class CompactedError extends Error {
  constructor(message = "requested index is unavailable due to compaction") {
    super(message);
    this.name = "CompactedError";
  }
}

/** Requested entries are beyond the storage's last index. */
export class UnavailableError extends Error {
  constructor(message = "requested entry at index is unavailable") {
    super(message);
    this.name = "UnavailableError";
  }
}

/** The storage is creating a snapshot; the leader retries later. */
export class SnapshotTemporarilyUnavailableError extends Error {
  constructor() {
    super("snapshot is temporarily unavailable");
    this.name = "SnapshotTemporarilyUnavailableError";
  }
}

export class AssertionError extends Error {
  constructor(message: string) {
    super(`raft invariant violated: ${message}`);
    this.name = "AssertionError";
  }
}

/** Assertions stay on in production (TigerBeetle's habit): a broken invariant stops loudly. */
export function assert(cond: unknown, message: string | (() => string)): asserts cond {
  if (!cond) throw new AssertionError(typeof message === "function" ? message() : message);
}
