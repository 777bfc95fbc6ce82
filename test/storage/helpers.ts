// Shared fixtures of the storage tests: throwaway directories, a raw LevelDB handle to damage a store
// behind its back, and entry builders.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Level } from "level";
import { type Entry, EntryType, index, term } from "../../src/raft/index.js";

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const base = await mkdtemp(join(tmpdir(), "zsha-storage-"));
  return { dir: join(base, "raft"), cleanup: () => rm(base, { recursive: true, force: true }) };
}

/** Opens the store's LevelDB directly (the store must be closed), runs `f`, closes it. */
export async function withRawDb<T>(dir: string, f: (db: Level<Buffer, Buffer>) => Promise<T>): Promise<T> {
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: "buffer", valueEncoding: "buffer" });
  await db.open();
  try {
    return await f(db);
  } finally {
    await db.close();
  }
}

export function ent(i: number, t: number, data = `e${i}t${t}`): Entry {
  return { index: index(i), term: term(t), type: EntryType.Normal, data: new TextEncoder().encode(data) };
}

export function ents(from: number, to: number, t: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, t));
  return out;
}

export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
