// The simulator's replicated state machine: a tiny key→value map whose entries remember the log index that
// last wrote them, so a read can be checked against the writes acknowledged before it.

import type { Entry, Index } from "../../src/raft/index.js";
import { EntryType } from "../../src/raft/index.js";

export interface WriteCommand {
  readonly client: number;
  readonly seq: number;
  readonly key: string;
  readonly value: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeWrite(c: WriteCommand): Uint8Array {
  return enc.encode(JSON.stringify(c));
}

export function decodeWrite(e: Entry): WriteCommand | undefined {
  if (e.type !== EntryType.Normal || e.data.length === 0) return undefined;
  return JSON.parse(dec.decode(e.data)) as WriteCommand;
}

/** A stable identity of an entry's content, for comparing entries across members. */
export function entryKey(e: Entry): string {
  return `${e.type}:${e.data.length === 0 ? "" : dec.decode(e.data)}`;
}

export class KvMachine {
  applied = 0 as Index;
  private data = new Map<string, { value: string; modIndex: number }>();

  apply(e: Entry): WriteCommand | undefined {
    this.applied = e.index;
    const cmd = decodeWrite(e);
    if (cmd) this.data.set(cmd.key, { value: cmd.value, modIndex: e.index });
    return cmd;
  }

  get(key: string): { value: string; modIndex: number } | undefined {
    return this.data.get(key);
  }

  serialize(): Uint8Array {
    return enc.encode(JSON.stringify({ applied: this.applied, data: [...this.data] }));
  }

  static restore(bytes: Uint8Array, snapIndex: Index): KvMachine {
    const m = new KvMachine();
    m.applied = snapIndex;
    if (bytes.length === 0) return m;
    const v = JSON.parse(dec.decode(bytes)) as {
      applied: number;
      data: [string, { value: string; modIndex: number }][];
    };
    m.data = new Map(v.data);
    return m;
  }
}
