// Errors of the on-disk Raft store. Corruption is never repaired or skipped: a member that silently drops
// a persisted vote or entry can elect two leaders or lose committed writes, so the operator must decide.

/** What was found on disk is not a state this store could have written. */
export class StorageCorruptError extends Error {
  constructor(
    readonly dir: string,
    /** The record at fault: "entry 42", "hard state", "snapshot", or "key 0x…" for an unknown key. */
    readonly record: string,
    /** One sentence saying what is wrong with it. */
    readonly problem: string,
    /** The log index concerned, when there is one. */
    readonly index?: number,
  ) {
    super(`raft store ${dir} is corrupt: ${record}: ${problem}`);
    this.name = "StorageCorruptError";
  }
}

/** The store directory is held by another process, or by another open handle in this one. */
export class StorageLockedError extends Error {
  constructor(
    readonly dir: string,
    options?: ErrorOptions,
  ) {
    super(
      `raft store ${dir} is already open (held by another process or another handle in this process)`,
      options,
    );
    this.name = "StorageLockedError";
  }
}

/** A write the caller asked for breaks a rule of the log (a bug in the caller: nothing was written). */
export class InvalidWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InvalidWriteError";
  }
}

/**
 * The store cannot be used: it was closed, or a write failed. After a failed write the in-memory state
 * and the disk may disagree, so every later call fails too (fail-stop, as etcd panics on a WAL error);
 * restart the member to reload from disk.
 */
export class StorageUnavailableError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StorageUnavailableError";
  }
}
