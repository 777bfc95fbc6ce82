// Txn: compares on every target with every result, a missing key comparing as zero/empty, the chosen
// branch's ops seeing each other's writes, one revision per txn, and a failing txn changing nothing.
import { describe, expect, it } from "vitest";
import { Code } from "../../src/kv/index.js";
import { b, cmp, Driver, opDel, opPut, opRange, put, R, rangeReq, s, txn } from "./support.js";

/** A store where "k" has create_revision 1, mod_revision 2 (a grant is no revision), version 2, value "m", lease `lease`. */
function fixture() {
  const d = new Driver();
  d.ok(put("k", "a"));
  const lease = d.grant(60);
  d.ok(put("k", "m", { lease }));
  return { d, lease };
}

function holds(d: Driver, c: ReturnType<typeof cmp>): boolean {
  const r = d.ok(txn([c], []));
  if (r.response.case !== "txn") throw new Error("not a txn response");
  return r.response.value.succeeded;
}

describe("txn compares", () => {
  it("the fixture is what the table below assumes", () => {
    const { d, lease } = fixture();
    const kv = d.kv("k");
    expect([kv?.createRevision, kv?.modRevision, kv?.version, s(kv?.value), kv?.lease]).toEqual([
      1n,
      2n,
      2n,
      "m",
      lease,
    ]);
  });

  // [target, value below, equal value, value above] for key "k" of the fixture.
  const cases = [
    ["version", 1n, 2n, 3n],
    ["createRevision", 0n, 1n, 2n],
    ["modRevision", 1n, 2n, 3n],
    ["value", b("a"), b("m"), b("z")],
  ] as const;

  for (const [target, below, equal, above] of cases) {
    it(`compares ${target} with EQUAL, NOT_EQUAL, GREATER and LESS`, () => {
      const { d } = fixture();
      const t = (value: bigint | Uint8Array) => ({ case: target, value }) as never;
      expect(holds(d, cmp("k", R.EQUAL, t(equal)))).toBe(true);
      expect(holds(d, cmp("k", R.EQUAL, t(below)))).toBe(false);
      expect(holds(d, cmp("k", R.NOT_EQUAL, t(below)))).toBe(true);
      expect(holds(d, cmp("k", R.NOT_EQUAL, t(equal)))).toBe(false);
      expect(holds(d, cmp("k", R.GREATER, t(below)))).toBe(true);
      expect(holds(d, cmp("k", R.GREATER, t(equal)))).toBe(false);
      expect(holds(d, cmp("k", R.LESS, t(above)))).toBe(true);
      expect(holds(d, cmp("k", R.LESS, t(equal)))).toBe(false);
    });
  }

  it("compares the lease a key is attached to", () => {
    const { d, lease } = fixture();
    expect(holds(d, cmp("k", R.EQUAL, { case: "lease", value: lease }))).toBe(true);
    expect(holds(d, cmp("k", R.NOT_EQUAL, { case: "lease", value: 0n }))).toBe(true);
    expect(holds(d, cmp("k", R.GREATER, { case: "lease", value: lease }))).toBe(false);
  });

  it("compares a value bytewise, a shorter prefix being less", () => {
    const d = new Driver();
    d.ok(put("k", "ab"));
    expect(holds(d, cmp("k", R.GREATER, { case: "value", value: b("a") }))).toBe(true);
    expect(holds(d, cmp("k", R.LESS, { case: "value", value: b("abc") }))).toBe(true);
  });

  it("compares a missing key as version, revisions and lease 0 and an empty value", () => {
    const d = new Driver();
    expect(holds(d, cmp("nope", R.EQUAL, { case: "version", value: 0n }))).toBe(true);
    expect(holds(d, cmp("nope", R.EQUAL, { case: "createRevision", value: 0n }))).toBe(true);
    expect(holds(d, cmp("nope", R.EQUAL, { case: "modRevision", value: 0n }))).toBe(true);
    expect(holds(d, cmp("nope", R.EQUAL, { case: "lease", value: 0n }))).toBe(true);
    expect(holds(d, cmp("nope", R.EQUAL, { case: "value", value: new Uint8Array() }))).toBe(true);
    expect(holds(d, cmp("nope", R.GREATER, { case: "version", value: 0n }))).toBe(false);
  });

  it("requires every compare to hold (an empty compare list succeeds)", () => {
    const { d } = fixture();
    const yes = cmp("k", R.EQUAL, { case: "version", value: 2n });
    const no = cmp("k", R.EQUAL, { case: "version", value: 7n });
    expect(holds(d, yes)).toBe(true);
    const r = d.ok(txn([yes, no], [opPut("x", "1")], [opPut("y", "1")]));
    expect(r.response.case === "txn" && r.response.value.succeeded).toBe(false);
    expect([d.kv("x"), s(d.kv("y")?.value)]).toEqual([undefined, "1"]);
    const empty = d.ok(txn([], [opPut("z", "1")]));
    expect(empty.response.case === "txn" && empty.response.value.succeeded).toBe(true);
  });

  it("a compare-and-swap on mod_revision lets exactly one of two racing writers win", () => {
    const d = new Driver();
    d.ok(put("lock", "free"));
    const seen = d.kv("lock")?.modRevision ?? 0n;
    const attempt = (who: string) =>
      d.ok(txn([cmp("lock", R.EQUAL, { case: "modRevision", value: seen })], [opPut("lock", who)]));
    const first = attempt("alice");
    const second = attempt("bob");
    expect(first.response.case === "txn" && first.response.value.succeeded).toBe(true);
    expect(second.response.case === "txn" && second.response.value.succeeded).toBe(false);
    expect(s(d.kv("lock")?.value)).toBe("alice");
  });
});

describe("txn operations", () => {
  it("applies all writes at one revision and answers each op in order", () => {
    const d = new Driver();
    d.ok(put("old", "1"));
    const r = d.ok(txn([], [opPut("a", "1"), opPut("b", "2"), opDel("old"), opRange("a")]));
    expect(r.revision).toBe(2);
    expect([d.kv("a")?.modRevision, d.kv("b")?.modRevision, d.kv("old")]).toEqual([2n, 2n, undefined]);
    if (r.response.case !== "txn") throw new Error("not a txn");
    expect(r.response.value.responses.map((x) => x.response.case)).toEqual([
      "put",
      "put",
      "deleteRange",
      "range",
    ]);
    for (const x of r.response.value.responses) expect(x.response.value?.header?.revision).toBe(2n);
    expect(r.response.value.header?.revision).toBe(2n);
  });

  it("lets a range inside the txn see the txn's earlier writes (as etcd does)", () => {
    const d = new Driver();
    d.ok(put("a", "before"));
    const r = d.ok(txn([], [opRange("a"), opPut("a", "after"), opRange("a"), opDel("a"), opRange("a")]));
    if (r.response.case !== "txn") throw new Error("not a txn");
    const values = r.response.value.responses
      .filter((x) => x.response.case === "range")
      .map((x) => (x.response.case === "range" ? x.response.value.kvs.map((kv) => s(kv.value)) : []));
    expect(values).toEqual([["before"], ["after"], []]);
  });

  it("does not bump the revision for a read-only txn or one whose deletes found nothing", () => {
    const d = new Driver();
    d.ok(put("a", "1"));
    expect(d.ok(txn([], [opRange("a")])).revision).toBe(1);
    expect(d.ok(txn([], [opDel("missing")])).revision).toBe(1);
    expect(d.ok(txn([], [opDel("missing"), opPut("b", "1")])).revision).toBe(2);
  });

  it("fails as a whole with NOT_FOUND when a put names an unknown lease, changing nothing", () => {
    const d = new Driver();
    d.ok(put("a", "1"));
    const r = d.fail(txn([], [opPut("b", "1"), opDel("a"), opPut("c", "1", 0x1an)]));
    expect(r.error.code).toBe(Code.NOT_FOUND);
    expect(r.error.message).toBe("txn: success[2].put: lease 0x1a does not exist");
    expect(r.revision).toBe(1);
    expect([d.kv("b"), s(d.kv("a")?.value), d.store.revision]).toEqual([undefined, "1", 1]);
  });

  it("only checks the leases of the branch that runs", () => {
    const d = new Driver();
    const r = d.ok(
      txn([cmp("x", R.EQUAL, { case: "version", value: 0n })], [opPut("a", "1")], [opPut("b", "1", 99n)]),
    );
    expect(r.response.case === "txn" && r.response.value.succeeded).toBe(true);
  });

  it("deletes by prefix inside a txn", () => {
    const d = new Driver();
    d.ok(put("p/1", "x"));
    d.ok(put("p/2", "x"));
    d.ok(put("q", "x"));
    const r = d.ok(txn([], [opDel("p/", true)]));
    expect(r.revision).toBe(4);
    expect(d.store.range(rangeReq("p/", { prefix: true })).count).toBe(0n);
    expect(d.store.keyCount).toBe(1);
  });
});
