// The store under the real Raft core: three members in one process, each persisting every Ready through
// its own RaftStore before its messages leave (the Ready contract in src/raft/index.ts). A member restarted
// from disk rejoins; a member that was away past a compaction receives a snapshot, which replaces its log.

import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  EntryType,
  type Message,
  MessageType,
  nodeId,
  RawNode,
  type Snapshot,
  StateType,
} from "../../src/raft/index.js";
import { RaftStore } from "../../src/storage/index.js";
import { tempDir, text } from "./helpers.js";

const IDS = ["a", "b", "c"] as const;
type Id = (typeof IDS)[number];
const CONF = { voters: IDS.map(nodeId), learners: [] };

interface Member {
  store: RaftStore;
  node: RawNode;
  applied: string[]; // the state machine: every value, in log order
  appliedIndex: number;
}

function seeded(seed: number): () => number {
  let s = seed;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

async function start(dir: string, id: Id, seed: number): Promise<Member> {
  const store = await RaftStore.open(dir);
  const node = new RawNode({
    id: nodeId(id),
    storage: store,
    electionTick: 10,
    heartbeatTick: 1,
    maxSizePerMsg: 64 * 1024,
    maxInflightMsgs: 64,
    checkQuorum: false,
    preVote: false,
    random: seeded(seed),
  });
  // On restart the state machine starts from the snapshot; the core then replays the committed entries.
  const snap = store.snapshot();
  const applied = snap.data.length > 0 ? (JSON.parse(text(snap.data)) as string[]) : [];
  return { store, node, applied, appliedIndex: snap.meta.index };
}

describe("RaftStore under the Raft core (Ready contract)", () => {
  let dirs: Record<Id, string>;
  let cleanups: (() => Promise<void>)[];
  const members = new Map<Id, Member>();

  beforeEach(async () => {
    cleanups = [];
    dirs = {} as Record<Id, string>;
    for (const id of IDS) {
      const t = await tempDir();
      dirs[id] = t.dir;
      cleanups.push(t.cleanup);
      const s = await RaftStore.open(t.dir);
      await s.bootstrap(CONF);
      await s.close();
    }
  });
  afterEach(async () => {
    for (const m of members.values()) await m.store.close();
    members.clear();
    for (const c of cleanups) await c();
  });

  /** Runs every member's Ready loop and delivers messages until nothing moves. */
  async function settle(): Promise<void> {
    for (let round = 0; round < 200; round++) {
      const outbox: Message[] = [];
      for (const m of members.values()) {
        while (m.node.hasReady()) {
          const rd = m.node.ready();
          await m.store.save(rd); // durable before any message leaves
          outbox.push(...rd.messages);
          if (rd.snapshot) {
            m.applied = JSON.parse(text(rd.snapshot.data)) as string[];
            m.appliedIndex = rd.snapshot.meta.index;
          }
          for (const e of rd.committedEntries) {
            if (e.type === EntryType.Normal && e.data.length > 0) m.applied.push(text(e.data));
            m.appliedIndex = e.index;
          }
          m.node.advance();
        }
      }
      if (outbox.length === 0) {
        if (round > 3) return;
        leader().node.tick(); // a heartbeat carries the commit index to followers
        continue;
      }
      for (const msg of outbox) {
        const to = members.get(msg.to as Id);
        if (!to) continue; // that member is down
        to.node.step(msg);
        if (msg.type === MessageType.Snap) members.get(msg.from as Id)!.node.reportSnapshot(msg.to, true);
      }
    }
    throw new Error("the cluster did not settle");
  }

  function leader(): Member {
    const l = [...members.values()].find((m) => m.node.status().state === StateType.Leader);
    if (!l) throw new Error("no leader");
    return l;
  }

  async function propose(from: number, to: number): Promise<void> {
    for (let i = from; i <= to; i++) leader().node.propose(new TextEncoder().encode(`v${i}`));
    await settle();
  }

  const values = (from: number, to: number) =>
    Array.from({ length: to - from + 1 }, (_, k) => `v${from + k}`);

  it("replicates through stores, survives a restart, and installs a snapshot on a member that fell behind", async () => {
    for (const [k, id] of IDS.entries()) members.set(id, await start(dirs[id], id, k + 1));
    members.get("a")!.node.campaign();
    await settle();
    await propose(1, 30);
    for (const m of members.values()) expect(m.applied).toEqual(values(1, 30));

    // Restart c from its disk: it comes back with its log, term and vote, and keeps up.
    const termBefore = members.get("c")!.store.hardState().term;
    await members.get("c")!.store.close();
    members.set("c", await start(dirs.c, "c", 33));
    expect(members.get("c")!.store.hardState().term).toBe(termBefore);
    await propose(31, 40);
    expect(members.get("c")!.applied).toEqual(values(1, 40));

    // c goes down; the others move on, snapshot and compact past everything c has.
    const cLast = members.get("c")!.store.lastIndex();
    await members.get("c")!.store.close();
    members.delete("c");
    await propose(41, 80);
    for (const id of ["a", "b"] as const) {
      const m = members.get(id)!;
      const data = new TextEncoder().encode(JSON.stringify(m.applied));
      await m.store.createSnapshot(m.node.status().applied, CONF, data);
      await m.store.compact(m.node.status().applied);
    }
    const snap: Snapshot = members.get("a")!.store.snapshot();
    expect(snap.meta.index).toBeGreaterThan(cLast);

    // c returns: the leader can only send it the snapshot, which replaces c's log on disk.
    members.set("c", await start(dirs.c, "c", 34));
    await settle();
    await propose(81, 90);
    const c = members.get("c")!;
    expect(c.applied).toEqual(values(1, 90));
    expect(c.store.snapshot().meta).toEqual(snap.meta);
    expect(c.store.firstIndex()).toBe(snap.meta.index + 1);

    // Every member restarted from disk rebuilds the same state.
    for (const [k, id] of IDS.entries()) {
      await members.get(id)!.store.close();
      members.set(id, await start(dirs[id], id, 50 + k));
    }
    members.get("b")!.node.campaign();
    await settle();
    for (const m of members.values()) expect(m.applied).toEqual(values(1, 90));
  });
});
