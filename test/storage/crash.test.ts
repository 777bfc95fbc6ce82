// The crash test the issue asks for: a child process writes through the store as fast as it can and
// prints each acknowledged write; we SIGKILL it at random moments, many times, reopen the store and check
// that nothing acknowledged is missing or changed, that the store opens without a corruption error, and
// that the next child continues from exactly what is on disk.

import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { index } from "../../src/raft/index.js";
import { RaftStore } from "../../src/storage/index.js";
import { crashEntryData, crashSnapshotData } from "./crash-data.js";
import { tempDir, text } from "./helpers.js";

const ROUNDS = 30;
// On a loaded machine each tsx start costs up to a second: past this budget, stop once MIN_ROUNDS are done.
const BUDGET_MS = 30_000;
const MIN_ROUNDS = 20;
const CHILD = fileURLToPath(new URL("./crash-child.ts", import.meta.url));

/** What the child had acknowledged, replayed in acknowledgement order. */
interface Model {
  terms: Map<number, number>; // index → term of acknowledged entries still in the log
  term: number;
  commit: number;
  snapshot: number;
}

function modelOf(s: RaftStore): Model {
  const terms = new Map<number, number>();
  for (let i = s.firstIndex(); i <= s.lastIndex(); i++) terms.set(i, s.term(index(i)));
  const hs = s.hardState();
  return { terms, term: hs.term, commit: hs.commit, snapshot: s.snapshot().meta.index };
}

function applyAck(m: Model, line: string): void {
  const [kind, ...f] = line.split(" ");
  const n = f.map(Number);
  if (kind === "a") {
    const [from, to, t, commit] = n as [number, number, number, number];
    for (let i = from; i <= to; i++) m.terms.set(i, t);
    for (const i of m.terms.keys()) if (i > to) m.terms.delete(i); // a new leader's append truncates
    m.term = Math.max(m.term, t);
    m.commit = Math.max(m.commit, commit);
  } else if (kind === "b") {
    m.snapshot = Math.max(m.snapshot, 1);
    m.term = Math.max(m.term, 1);
    m.commit = Math.max(m.commit, 1);
  } else if (kind === "s") {
    m.snapshot = Math.max(m.snapshot, n[0]!);
  } else if (kind !== "c") {
    throw new Error(`unexpected line from the child: ${line}`);
  }
}

/** Every acknowledged write must be in the reopened store, byte for byte. Returns the entries checked. */
function verify(s: RaftStore, m: Model): number {
  const hs = s.hardState();
  const snap = s.snapshot();
  expect(hs.term).toBeGreaterThanOrEqual(m.term);
  expect(hs.commit).toBeGreaterThanOrEqual(m.commit);
  expect(snap.meta.index).toBeGreaterThanOrEqual(m.snapshot);
  if (snap.meta.index > 1) expect(text(snap.data)).toBe(text(crashSnapshotData(snap.meta.index)));
  let checked = 0;
  for (const [i, t] of m.terms) {
    if (i < s.firstIndex()) {
      // Compacted: allowed only into a snapshot that covers it.
      expect(i, `entry ${i} was compacted without a snapshot covering it`).toBeLessThanOrEqual(
        snap.meta.index,
      );
      continue;
    }
    if (i > s.lastIndex()) {
      // Gone: only an uncommitted entry, truncated by a later (durable, unacknowledged) write at a newer term.
      expect(i, `acknowledged committed entry ${i} is missing`).toBeGreaterThan(m.commit);
      expect(hs.term).toBeGreaterThan(t);
      continue;
    }
    const stored = s.term(index(i));
    if (i <= m.commit) expect(stored, `term of committed entry ${i}`).toBe(t);
    else expect(stored, `term of entry ${i}`).toBeGreaterThanOrEqual(t);
    const [e] = s.entries(index(i), index(i + 1), Number.MAX_SAFE_INTEGER);
    expect(text(e!.data)).toBe(crashEntryData(i, stored));
    checked++;
  }
  return checked;
}

/** How long a child takes from spawn to "ready" (its store open): learnt, as it varies with machine load. */
let startupMs = 500;

/** Runs the child until a random moment, kills it with SIGKILL, and returns the lines it printed. */
function runAndKill(dir: string, seed: number, rand: () => number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const spawned = performance.now();
    const child: ChildProcess = spawn(process.execPath, ["--import", "tsx", CHILD, dir, String(seed)], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    const lines: string[] = [];
    let stderr = "";
    let timer: NodeJS.Timeout | undefined;
    const kill = () => child.kill("SIGKILL");
    // A quarter of the rounds die at any moment from spawn to just after the open (inside LevelDB's
    // recovery, the fresh-store write or the bootstrap); the rest while writing at full speed.
    if (rand() < 1 / 4) timer = setTimeout(kill, rand() * startupMs * 1.2);
    createInterface({ input: child.stdout! }).on("line", (l) => {
      lines.push(l);
      if (lines.length > 1) return;
      startupMs = 0.7 * startupMs + 0.3 * (performance.now() - spawned);
      timer ??= setTimeout(kill, 10 + rand() * 300);
    });
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`child exited by itself (code ${code}): ${stderr}`));
      else resolve(lines);
    });
  });
}

describe("crash test: SIGKILL at random moments", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir());
  });
  afterAll(() => cleanup());

  it(`loses no acknowledged write over ${MIN_ROUNDS} to ${ROUNDS} kills`, { timeout: 90_000 }, async () => {
    const seed = Date.now() >>> 0;
    let s = seed;
    const rand = () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 4294967296;
    };
    let model: Model = { terms: new Map(), term: 0, commit: 0, snapshot: 0 };
    let before = { first: 1, last: 0 };
    let acks = 0;
    let checked = 0;
    let roundsWithAcks = 0;
    const started = performance.now();
    let rounds = 0;
    for (let round = 0; round < ROUNDS; round++) {
      if (round >= MIN_ROUNDS && performance.now() - started > BUDGET_MS) break;
      rounds++;
      const lines = await runAndKill(dir, seed + round, rand);
      const [ready, ...rest] = lines;
      if (ready !== undefined) {
        // The child starts from exactly what we found on disk after the previous kill.
        if (round > 0)
          expect(ready, `round ${round} (seed ${seed})`).toBe(`ready ${before.first} ${before.last}`);
        for (const l of rest) applyAck(model, l);
        acks += rest.length;
        if (rest.length > 0) roundsWithAcks++;
      }
      const store = await RaftStore.open(dir); // throws StorageCorruptError on any damage
      try {
        checked += verify(store, model);
        model = modelOf(store);
        before = { first: store.firstIndex(), last: store.lastIndex() };
      } finally {
        await store.close();
      }
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `crash test: ${rounds} kills in ${seconds.toFixed(1)} s, ${acks} acknowledged writes, ` +
        `${checked} entry checks, final log ${before.first}..${before.last} (seed ${seed})`,
    );
    expect(roundsWithAcks).toBeGreaterThan(rounds / 2);
    expect(before.last).toBeGreaterThan(500);
  });
});
