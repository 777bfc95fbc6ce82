// Reading a store back at open: every record is checked on its own (framing, checksum, decoding, key
// agreement), then the records are checked against each other. The first problem found is reported as a
// StorageCorruptError; nothing is repaired or skipped.

import type { Level } from "level";
import type { Entry, HardState, Snapshot } from "../raft/index.js";
import { StorageCorruptError } from "./errors.js";
import { describeKey, parseKey, RecordError, unframe } from "./record.js";
import { decodeEntry, decodeHardState, decodeSnapshot } from "./values.js";

export interface LoadedState {
  /** True when the directory holds no record at all: a fresh store. */
  readonly empty: boolean;
  readonly snapshot: Snapshot | undefined;
  readonly hardState: HardState | undefined;
  /** Contiguous entries in index order; the first may be at or below the snapshot index (see below). */
  readonly entries: Entry[];
}

export type RaftDb = Level<Buffer, Buffer>;

export async function loadState(db: RaftDb, dir: string): Promise<LoadedState> {
  const corrupt = (record: string, problem: string, i?: number) =>
    new StorageCorruptError(dir, record, problem, i);
  let snapshot: Snapshot | undefined;
  let hardState: HardState | undefined;
  const entries: Entry[] = [];
  let records = 0;

  for await (const [key, value] of db.iterator()) {
    records++;
    const kind = parseKey(key);
    if (!kind) throw corrupt(describeKey(key), "this store never writes such a key");
    const what =
      kind.kind === "entry" ? `entry ${kind.index}` : kind.kind === "hardState" ? "hard state" : "snapshot";
    const at = kind.kind === "entry" ? kind.index : undefined;
    let payload: Uint8Array;
    try {
      payload = unframe(key, value);
    } catch (e) {
      if (e instanceof RecordError) throw corrupt(what, e.message, at);
      throw e;
    }
    try {
      if (kind.kind === "hardState") hardState = decodeHardState(payload);
      else if (kind.kind === "snapshot") snapshot = decodeSnapshot(payload);
      else entries.push(decodeEntry(payload));
    } catch (e) {
      throw corrupt(what, `undecodable: ${(e as Error).message}`, at);
    }
    const e = entries[entries.length - 1];
    if (kind.kind === "entry" && e!.index !== kind.index) {
      throw corrupt(what, `the record holds entry ${e!.index} instead`, at);
    }
  }

  if (records === 0) return { empty: true, snapshot: undefined, hardState: undefined, entries };
  checkLog(corrupt, snapshot, hardState, entries);
  return { empty: false, snapshot, hardState, entries };
}

type Corrupt = (record: string, problem: string, i?: number) => StorageCorruptError;

// The store only ever writes states that pass these checks (RaftStore validates every write), so a failure
// here means the disk lost or changed data behind our back.
function checkLog(
  corrupt: Corrupt,
  snap: Snapshot | undefined,
  hs: HardState | undefined,
  ents: Entry[],
): void {
  if (!snap) {
    throw corrupt(
      "snapshot",
      `the record is missing, yet the store holds ${ents.length} entries${hs ? " and a hard state" : ""}`,
    );
  }
  const s = snap.meta.index;
  for (let k = 1; k < ents.length; k++) {
    const prev = ents[k - 1]!;
    const e = ents[k]!;
    if (e.index !== prev.index + 1) {
      throw corrupt(
        `entry ${e.index}`,
        `gap in the log: it follows entry ${prev.index} (entries ${prev.index + 1}..${e.index - 1} are missing)`,
        e.index,
      );
    }
    if (e.term < prev.term) {
      throw corrupt(
        `entry ${e.index}`,
        `term ${e.term} is lower than term ${prev.term} of entry ${prev.index}`,
        e.index,
      );
    }
  }
  let last: number = s;
  if (ents.length > 0) {
    const first = ents[0]!;
    const lastEntry = ents[ents.length - 1]!;
    if (first.index === 0) throw corrupt("entry 0", "index 0 is never a log entry", 0);
    if (first.index > s + 1) {
      throw corrupt(
        `entry ${first.index}`,
        `entries do not follow the snapshot at ${s}: entries ${s + 1}..${first.index - 1} are missing`,
        first.index,
      );
    }
    if (lastEntry.index < s) {
      throw corrupt(
        `entry ${lastEntry.index}`,
        `the log ends before the snapshot at ${s} (stale entries ${first.index}..${lastEntry.index})`,
        lastEntry.index,
      );
    }
    // A log kept below the snapshot (entries retained for slow followers) must agree with it at its index.
    if (first.index <= s) {
      const atSnap = ents[s - first.index]!;
      if (atSnap.term !== snap.meta.term) {
        throw corrupt(
          `entry ${s}`,
          `term ${atSnap.term} differs from term ${snap.meta.term} of the snapshot at ${s}`,
          s,
        );
      }
    } else if (first.term < snap.meta.term) {
      throw corrupt(
        `entry ${first.index}`,
        `term ${first.term} is lower than the snapshot's term ${snap.meta.term}`,
        first.index,
      );
    }
    last = Math.max(s, lastEntry.index);
  }
  if (!hs) {
    if (s > 0) throw corrupt("hard state", `the record is missing, yet the snapshot is at index ${s}`);
    if (ents.length > 0)
      throw corrupt("hard state", `the record is missing, yet the log holds ${ents.length} entries`);
    return;
  }
  if (hs.commit > last) throw corrupt("hard state", `commit ${hs.commit} is beyond the last index ${last}`);
  if (hs.commit < s) throw corrupt("hard state", `commit ${hs.commit} is before the snapshot at ${s}`);
  const lastTerm = ents.length > 0 ? ents[ents.length - 1]!.term : snap.meta.term;
  if (lastTerm > hs.term) {
    throw corrupt(
      "hard state",
      `term ${hs.term} is lower than term ${lastTerm} of the last entry or snapshot`,
    );
  }
}
