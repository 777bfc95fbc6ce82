// The sorted key index against a naive model (a Set sorted on demand), under random inserts and removes,
// including bytes above 0x7f and keys that are prefixes of each other.
import { describe, expect, it } from "vitest";
import { compareBytes, keyBytes, keyString, SortedKeys } from "../../src/kv/keys.js";

function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a * 1664525 + 1013904223) >>> 0;
    return a / 4294967296;
  };
}

describe("keys", () => {
  it("round-trips arbitrary bytes through the internal string form", () => {
    const all = new Uint8Array(256).map((_, i) => i);
    expect(keyBytes(keyString(all))).toEqual(all);
    expect(keyString(all.subarray(10, 12))).toBe("\n\u000b");
  });

  it("orders the string form exactly as bytes compare", () => {
    const r = rng(1);
    const rand = () =>
      new Uint8Array(Math.floor(r() * 4)).map(() => [0, 1, 0x7f, 0x80, 0xff, 0x61][Math.floor(r() * 6)] ?? 0);
    for (let i = 0; i < 2000; i++) {
      const x = rand();
      const y = rand();
      const bytes = Math.sign(compareBytes(x, y));
      const strings = keyString(x) < keyString(y) ? -1 : keyString(x) > keyString(y) ? 1 : 0;
      expect(strings).toBe(bytes);
    }
  });

  it("selects keys and prefixes like a sorted, filtered set", () => {
    const r = rng(7);
    const alphabet = ["a", "b", "/", "\u00ff", "\u0000"];
    const randKey = () =>
      Array.from({ length: 1 + Math.floor(r() * 3) }, () => alphabet[Math.floor(r() * alphabet.length)]).join(
        "",
      );
    const index = new SortedKeys();
    const model = new Set<string>();
    for (let i = 0; i < 3000; i++) {
      const k = randKey();
      if (r() < 0.6) {
        index.insert(k);
        model.add(k);
      } else {
        index.remove(k);
        model.delete(k);
      }
      const probe = randKey().slice(0, 1 + Math.floor(r() * 2));
      const sorted = [...model].sort();
      expect(index.select({ key: probe, prefix: true })).toEqual(sorted.filter((x) => x.startsWith(probe)));
      expect(index.select({ key: probe, prefix: false })).toEqual(model.has(probe) ? [probe] : []);
      expect(index.size).toBe(model.size);
    }
    expect(index.select({ key: "", prefix: true })).toEqual([...model].sort());
  });
});
