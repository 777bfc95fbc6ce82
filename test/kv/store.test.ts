// Revisions, versions, Put, DeleteRange and Range, checked against etcd v3's documented semantics.
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { CommandSchema } from "../../src/gen/zsha/kv/v1/command_pb.js";
import { PutRequestSchema } from "../../src/gen/zsha/kv/v1/kv_pb.js";
import { Code, KvStore } from "../../src/kv/index.js";
import { index } from "../../src/raft/index.js";
import { b, Driver, del, put, rangeReq, s } from "./support.js";

const keysOf = (d: Driver, key: string, opts: Parameters<typeof rangeReq>[1] = {}) =>
  d.store.range(rangeReq(key, opts)).kvs.map((kv) => s(kv.key));

describe("revisions and versions", () => {
  it("starts empty at revision 0 and bumps the revision once per put", () => {
    const d = new Driver();
    expect(d.store.revision).toBe(0);
    expect(d.ok(put("a", "1")).revision).toBe(1);
    expect(d.ok(put("b", "1")).revision).toBe(2);
    expect(d.ok(put("a", "2")).revision).toBe(3);
    expect(d.store.revision).toBe(3);
  });

  it("keeps create_revision, moves mod_revision and counts versions across updates", () => {
    const d = new Driver();
    d.ok(put("k", "1"));
    d.ok(put("other", "x"));
    d.ok(put("k", "2"));
    d.ok(put("k", "3"));
    const kv = d.kv("k");
    expect({ c: kv?.createRevision, m: kv?.modRevision, v: kv?.version, val: s(kv?.value) }).toEqual({
      c: 1n,
      m: 4n,
      v: 3n,
      val: "3",
    });
  });

  it("restarts version and create_revision when a deleted key is created again", () => {
    const d = new Driver();
    d.ok(put("k", "1"));
    d.ok(put("k", "2"));
    d.ok(del("k"));
    expect(d.kv("k")).toBeUndefined();
    d.ok(put("k", "3"));
    const kv = d.kv("k");
    expect([kv?.createRevision, kv?.modRevision, kv?.version]).toEqual([4n, 4n, 1n]);
  });

  it("bumps the revision for a delete only when something was deleted", () => {
    const d = new Driver();
    d.ok(put("a", "1"));
    const none = d.ok(del("missing"));
    expect(none.revision).toBe(1);
    expect(none.response.case === "deleteRange" && none.response.value.deleted).toBe(0n);
    const one = d.ok(del("a"));
    expect(one.revision).toBe(2);
  });

  it("sets every response header's revision to the store's revision after the command", () => {
    const d = new Driver();
    const r = d.ok(put("a", "1"));
    expect(r.response.value.header?.revision).toBe(1n);
    expect(d.store.range(rangeReq("a")).header?.revision).toBe(1n);
  });

  it("refuses to apply an index twice or out of order (an invariant of the caller, not user input)", () => {
    const store = new KvStore();
    const cmd = create(CommandSchema, { op: put("a", "1") });
    store.apply(index(5), cmd);
    expect(() => store.apply(index(5), cmd)).toThrow(/applied after entry 5/);
    expect(store.appliedIndex).toBe(5);
  });

  it("answers a command without an operation with INVALID_ARGUMENT and changes nothing", () => {
    const store = new KvStore();
    const r = store.apply(index(1), create(CommandSchema, {}));
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error.code).toBe(Code.INVALID_ARGUMENT);
    expect(store.revision).toBe(0);
  });
});

describe("put", () => {
  it("returns the previous key-value only when asked", () => {
    const d = new Driver();
    const first = d.ok(put("k", "1", { prevKv: true }));
    expect(first.response.case === "put" && first.response.value.prevKv).toBeUndefined();
    const quiet = d.ok(put("k", "2"));
    expect(quiet.response.case === "put" && quiet.response.value.prevKv).toBeUndefined();
    const loud = d.ok(put("k", "3", { prevKv: true }));
    const prev = loud.response.case === "put" ? loud.response.value.prevKv : undefined;
    expect([s(prev?.value), prev?.version, prev?.modRevision]).toEqual(["2", 2n, 2n]);
  });

  it("stores a copy of the key and value, not a view into the command's buffer", () => {
    const d = new Driver();
    const op = put("k", "v");
    d.ok(op);
    if (op.case === "put") op.value.value[0] = 0x5a;
    expect(s(d.kv("k")?.value)).toBe("v");
  });

  it("accepts empty values and arbitrary bytes in keys", () => {
    const d = new Driver();
    d.ok({
      case: "put",
      value: create(PutRequestSchema, { key: new Uint8Array([0, 255, 128]), value: b("x") }),
    });
    d.ok(put("e", ""));
    expect(d.kv("e")?.value.length).toBe(0);
    expect(d.store.get(new Uint8Array([0, 255, 128]))?.version).toBe(1n);
  });
});

describe("delete range", () => {
  it("deletes one key or a prefix, returning previous values when asked", () => {
    const d = new Driver();
    for (const k of ["a/1", "a/2", "a", "b/1"]) d.ok(put(k, `v${k}`));
    const r = d.ok(del("a/", { prefix: true, prevKv: true }));
    expect(r.response.case).toBe("deleteRange");
    if (r.response.case !== "deleteRange") return;
    expect(r.response.value.deleted).toBe(2n);
    expect(r.response.value.prevKvs.map((kv) => s(kv.value))).toEqual(["va/1", "va/2"]);
    expect(r.revision).toBe(5);
    expect(keysOf(d, "", { prefix: true })).toEqual(["a", "b/1"]);
  });

  it("leaves prev_kvs empty unless asked", () => {
    const d = new Driver();
    d.ok(put("a", "1"));
    const r = d.ok(del("a"));
    expect(r.response.case === "deleteRange" && r.response.value.prevKvs).toEqual([]);
  });
});

describe("range", () => {
  const fill = () => {
    const d = new Driver();
    for (const k of ["b", "a/2", "a/10", "a/1", "c", "a"]) d.ok(put(k, `v-${k}`));
    return d;
  };

  it("returns keys in bytewise order", () => {
    const d = fill();
    expect(keysOf(d, "", { prefix: true })).toEqual(["a", "a/1", "a/10", "a/2", "b", "c"]);
    expect(keysOf(d, "a/", { prefix: true })).toEqual(["a/1", "a/10", "a/2"]);
  });

  it("orders bytes above 0x7f after ASCII (bytewise, not by UTF-16 or locale)", () => {
    const d = new Driver();
    d.ok(put("é", "1"));
    d.ok(put("z", "1"));
    d.ok(put("\u0001", "1"));
    expect(keysOf(d, "", { prefix: true })).toEqual(["\u0001", "z", "é"]);
  });

  it("finds a single key, or nothing", () => {
    const d = fill();
    expect(keysOf(d, "a")).toEqual(["a"]);
    expect(keysOf(d, "a/3")).toEqual([]);
    expect(d.store.range(rangeReq("zz")).count).toBe(0n);
  });

  it("applies limit with more and the full count", () => {
    const d = fill();
    const r = d.store.range(rangeReq("a", { prefix: true, limit: 2 }));
    expect(r.kvs.map((kv) => s(kv.key))).toEqual(["a", "a/1"]);
    expect([r.more, r.count]).toEqual([true, 4n]);
    const all = d.store.range(rangeReq("a", { prefix: true, limit: 4 }));
    expect([all.kvs.length, all.more, all.count]).toEqual([4, false, 4n]);
  });

  it("counts without returning keys when count_only", () => {
    const d = fill();
    const r = d.store.range(rangeReq("", { prefix: true, countOnly: true }));
    expect([r.kvs.length, r.count, r.more]).toEqual([0, 6n, false]);
  });

  it("returns keys and metadata without values when keys_only", () => {
    const d = fill();
    const r = d.store.range(rangeReq("a/1", { keysOnly: true }));
    expect(r.kvs.map((kv) => [s(kv.key), kv.value.length, kv.version])).toEqual([["a/1", 0, 1n]]);
    expect(s(d.kv("a/1")?.value)).toBe("v-a/1");
  });

  it("sees the key set after deletes and re-creates", () => {
    const d = fill();
    d.ok(del("a/", { prefix: true }));
    d.ok(put("a/5", "x"));
    expect(keysOf(d, "a", { prefix: true })).toEqual(["a", "a/5"]);
    expect(d.store.keyCount).toBe(4);
  });
});
