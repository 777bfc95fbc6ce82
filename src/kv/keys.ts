// Keys are arbitrary bytes ordered bytewise. Inside the store a key is held as a latin1 ("binary") string:
// one UTF-16 code unit per byte, so JavaScript's string order IS bytewise order and a Map can index by it.

export type KeyString = string;

export function keyString(bytes: Uint8Array): KeyString {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

export function keyBytes(key: KeyString): Uint8Array {
  return new Uint8Array(Buffer.from(key, "latin1"));
}

/** Bytewise comparison: negative, zero or positive, like a sort comparator. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = (a[i] as number) - (b[i] as number);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** What a range, delete or watch selects: one key, or every key starting with it. */
export interface KeySelector {
  readonly key: KeyString;
  readonly prefix: boolean;
}

export function selects(sel: KeySelector, key: KeyString): boolean {
  return sel.prefix ? key.startsWith(sel.key) : key === sel.key;
}

/**
 * The live keys in bytewise order, for ranges by prefix. A sorted array with binary search: inserts and
 * deletes cost a copy of the tail, which stays cheap for the tens of thousands of keys this store holds.
 */
export class SortedKeys {
  readonly #keys: KeyString[] = [];

  get size(): number {
    return this.#keys.length;
  }

  /** Index of the first key >= `key`. */
  #lowerBound(key: KeyString): number {
    let lo = 0;
    let hi = this.#keys.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.#keys[mid] as KeyString) < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  insert(key: KeyString): void {
    const i = this.#lowerBound(key);
    if (this.#keys[i] !== key) this.#keys.splice(i, 0, key);
  }

  remove(key: KeyString): void {
    const i = this.#lowerBound(key);
    if (this.#keys[i] === key) this.#keys.splice(i, 1);
  }

  /** The selected keys in order (a copy: callers may change the store while walking it). */
  select(sel: KeySelector): KeyString[] {
    if (!sel.prefix) {
      const i = this.#lowerBound(sel.key);
      return this.#keys[i] === sel.key ? [sel.key] : [];
    }
    const out: KeyString[] = [];
    for (let i = this.#lowerBound(sel.key); i < this.#keys.length; i++) {
      const k = this.#keys[i] as KeyString;
      if (!k.startsWith(sel.key)) break;
      out.push(k);
    }
    return out;
  }
}
