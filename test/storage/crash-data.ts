// The crash test's deterministic content: what entry i at term t and the snapshot at i must hold, so the
// parent can check every byte it finds after a kill.

import { type Entry, EntryType, index, term } from "../../src/raft/index.js";

const FILLER = "x".repeat(200); // about the size of a small KV put

export function crashEntryData(i: number, t: number): string {
  return `${i}:${t}:${FILLER}`;
}

export function crashEntry(i: number, t: number): Entry {
  return {
    index: index(i),
    term: term(t),
    type: EntryType.Normal,
    data: new TextEncoder().encode(crashEntryData(i, t)),
  };
}

export function crashSnapshotData(i: number): Uint8Array {
  return new TextEncoder().encode(`snapshot@${i}`);
}
