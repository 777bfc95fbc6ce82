// The Ready contract of index.ts, exercised at its edges: stepping messages between ready() and advance()
// (allowed by the contract) must never let an entry or snapshot skip persistence.

import { describe, expect, it } from "vitest";
import { index, MemoryStorage, MessageType, nodeId, term } from "../../src/raft/index.js";
import { entry, ids, Solo, storageWithLog } from "./harness.js";

const a = nodeId("a");
const c = nodeId("c");

describe("Ready contract", () => {
  it("an entry rewritten by a newer leader while the Ready holding the old one is in flight is still persisted", () => {
    const s = new Solo(storageWithLog(["a", "b", "c"], [], 2), "b");
    s.step({
      type: MessageType.App,
      from: a,
      term: term(2),
      index: index(1),
      logTerm: term(1),
      entries: [entry(2, 2), entry(3, 2)],
    });
    const rd1 = s.node.ready();
    expect(rd1.entries.map((e) => [e.index, e.term])).toEqual([
      [2, 2],
      [3, 2],
    ]);
    // Before rd1 is persisted, the leader of term 3 replaces entry 3.
    s.step({
      type: MessageType.App,
      from: c,
      term: term(3),
      index: index(2),
      logTerm: term(2),
      entries: [entry(3, 3, "new")],
    });
    s.storage.append(rd1.entries);
    if (rd1.hardState) s.storage.setHardState(rd1.hardState);
    s.node.advance();
    // Advancing past (3, 2) must not mark (3, 3) stable: the next Ready hands it out (with entry 2 again,
    // harmlessly, as etcd does when the acknowledged term no longer matches).
    const rd2 = s.node.ready();
    expect(rd2.entries.map((e) => [e.index, e.term])).toContainEqual([3, 3]);
    s.storage.append(rd2.entries);
    s.node.advance();
    expect(s.storage.term(index(3))).toBe(3);
    expect(s.terms()).toEqual([2, 3]);
  });

  it("a snapshot installed while a Ready is in flight comes out in the next Ready, and the old Ready's advance does not undo it", () => {
    const s = new Solo(MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] }), "b");
    s.step({
      type: MessageType.App,
      from: a,
      term: term(2),
      index: index(1),
      logTerm: term(1),
      entries: [entry(2, 2)],
      commit: index(2),
    });
    const rd1 = s.node.ready();
    expect(rd1.committedEntries.map((e) => e.index)).toEqual([2]);
    s.step({
      type: MessageType.Snap,
      from: a,
      term: term(2),
      snapshot: {
        meta: { index: index(9), term: term(2), confState: { voters: ids("a", "b", "c"), learners: [] } },
        data: new Uint8Array([1]),
      },
    });
    s.storage.append(rd1.entries);
    if (rd1.hardState) s.storage.setHardState(rd1.hardState);
    s.node.advance();
    const rd2 = s.node.ready();
    expect(rd2.snapshot?.meta.index).toBe(9);
    expect(rd2.hardState?.commit).toBe(9);
    expect(rd2.messages).toMatchObject([{ type: MessageType.AppResp, index: 9 }]);
    s.storage.applySnapshot(rd2.snapshot!);
    s.storage.setHardState(rd2.hardState!);
    s.node.advance();
    expect(s.node.status()).toMatchObject({ commit: 9, applied: 9, lastIndex: 9 });
    expect(s.node.hasReady()).toBe(false);
  });

  it("ready() twice without advance() is an invariant violation; advance() without ready() too", () => {
    const s = new Solo(MemoryStorage.bootstrap({ voters: ids("a", "b", "c"), learners: [] }));
    s.node.campaign();
    s.node.ready();
    expect(s.node.hasReady()).toBe(false);
    expect(() => s.node.ready()).toThrow(/before advance/);
    s.node.advance();
    expect(() => s.node.advance()).toThrow(/without a ready/);
  });
});
