// Crash-test writer (spawned by crash.test.ts): appends entries and hard states through a RaftStore as
// fast as it can, now and then truncating an uncommitted suffix at a new term, snapshotting and compacting,
// and prints each write on stdout the moment it is acknowledged (its promise resolved). The parent kills
// it with SIGKILL at a random moment and checks the store against what was acknowledged.
//
// Usage: crash-child.ts <dir> <seed>
// Output lines: "ready <firstIndex> <lastIndex>" (as opened), "b" (bootstrapped), "a <from> <to> <term> <commit>" (a save; "-" for no
// entries), "s <index>" (snapshot created), "c <index>" (compacted).

import { index, nodeId, term } from "../../src/raft/index.js";
import { RaftStore } from "../../src/storage/index.js";
import { crashEntry, crashSnapshotData } from "./crash-data.js";

const [dir, seedArg] = process.argv.slice(2);
if (!dir || !seedArg) throw new Error("usage: crash-child.ts <dir> <seed>");

// mulberry32: a seeded generator, so a failing round can be replayed from its seed.
let seed = Number(seedArg) >>> 0;
function rand(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

// stdout to a pipe is synchronous on Linux, so a printed acknowledgement is with the parent before the kill.
const out = (line: string): void => void process.stdout.write(`${line}\n`);
const CONF = { voters: [nodeId("n1")], learners: [] };

const store = await RaftStore.open(dir);
out(`ready ${store.firstIndex()} ${store.lastIndex()}`); // what it found, before writing anything
if (store.snapshot().meta.index === 0) {
  await store.bootstrap(CONF);
  out("b");
}
let last: number = store.lastIndex();
let t: number = store.hardState().term;
let commit: number = store.hardState().commit;
let snapIndex: number = store.snapshot().meta.index;
let dummy = store.firstIndex() - 1;

const inflight: Promise<void>[] = [];
for (;;) {
  const r = rand();
  if (r < 0.05 && commit - snapIndex > 300) {
    // Keep 100 entries below the snapshot, as a leader does for slow followers.
    const at = commit;
    const compactTo = at - 100;
    inflight.push(store.createSnapshot(index(at), CONF, crashSnapshotData(at)).then(() => out(`s ${at}`)));
    if (compactTo > dummy) inflight.push(store.compact(index(compactTo)).then(() => out(`c ${compactTo}`)));
    snapIndex = at;
    dummy = Math.max(dummy, compactTo);
    continue;
  }
  let from: number;
  let to: number;
  if (r < 0.08 && last > commit + 1) {
    // A new leader overwrites an uncommitted suffix: sometimes shorter than before, so stale keys must go.
    t++;
    from = commit + 1 + Math.floor(rand() * (last - commit));
    to = from + Math.floor(rand() * 4);
  } else {
    from = last + 1;
    to = last + 1 + Math.floor(rand() * 3);
  }
  const entries = [];
  for (let i = from; i <= to; i++) entries.push(crashEntry(i, t));
  last = to;
  commit = Math.max(commit, last - 5);
  const line = `a ${from} ${to} ${t} ${commit}`;
  inflight.push(
    store
      .save({ entries, hardState: { term: term(t), vote: nodeId("n1"), commit: index(commit) } })
      .then(() => out(line)),
  );
  if (inflight.length >= 64) await inflight.shift();
}
