import { describe, expect, it } from "vitest";
import { crc32c } from "../../src/storage/crc32c.js";
import { entryKey, FORMAT_VERSION, frame, parseKey, RecordError, unframe } from "../../src/storage/record.js";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("crc32c", () => {
  it("matches the published check values (RFC 3720 B.4 and the CRC catalogue)", () => {
    expect(crc32c(bytes("123456789"))).toBe(0xe3069283);
    expect(crc32c(new Uint8Array(32))).toBe(0x8a9136aa);
    expect(crc32c(new Uint8Array(32).fill(0xff))).toBe(0x62a8ab43);
    expect(crc32c(new Uint8Array(0))).toBe(0);
  });

  it("agrees with the plain bit-by-bit definition at every length and alignment", () => {
    const bitwise = (d: Uint8Array) => {
      let c = 0xffffffff;
      for (const b of d) {
        c ^= b;
        for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
      }
      return ~c >>> 0;
    };
    const data = new Uint8Array(300).map((_, i) => (i * 7919 + 13) & 0xff);
    for (let off = 0; off < 8; off++) {
      for (let len = 0; len < 40; len++)
        expect(crc32c(data.subarray(off, off + len))).toBe(bitwise(data.subarray(off, off + len)));
    }
    expect(crc32c(data)).toBe(bitwise(data));
  });

  it("continues over pieces exactly as over the whole", () => {
    const all = bytes("the quick brown fox jumps over the lazy dog");
    expect(crc32c(all.subarray(17), crc32c(all.subarray(0, 17)))).toBe(crc32c(all));
  });
});

describe("record framing", () => {
  const key = entryKey(7);
  const payload = bytes("payload");

  it("round-trips and names the entry index in the key", () => {
    const v = frame(key, payload);
    expect(v[0]).toBe(FORMAT_VERSION);
    expect(unframe(key, v)).toEqual(payload);
    expect(parseKey(key)).toEqual({ kind: "entry", index: 7 });
    expect(parseKey(bytes("x"))).toBeUndefined();
  });

  it("detects every single flipped bit", () => {
    const v = frame(key, payload);
    for (let bit = 0; bit < v.length * 8; bit++) {
      const bad = Buffer.from(v);
      bad[bit >> 3]! ^= 1 << (bit & 7);
      expect(() => unframe(key, bad), `bit ${bit}`).toThrow(RecordError);
    }
  });

  it("detects truncation, trailing bytes, an unknown version and a value moved to another key", () => {
    const v = frame(key, payload);
    expect(() => unframe(key, v.subarray(0, v.length - 3))).toThrow(
      "value is truncated: header says 7 payload bytes, found 4",
    );
    expect(() => unframe(key, v.subarray(0, 5))).toThrow("shorter than the 9-byte header");
    expect(() => unframe(key, Buffer.concat([v, Buffer.from([0])]))).toThrow(
      "1 bytes after its 7-byte payload",
    );
    const future = Buffer.from(v);
    future[0] = 9;
    expect(() => unframe(key, future)).toThrow("format version 9 is unknown (this build reads version 1)");
    expect(() => unframe(entryKey(8), v)).toThrow(/checksum mismatch/);
  });
});
