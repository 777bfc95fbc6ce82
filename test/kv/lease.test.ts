// Lease state: grant (ids chosen deterministically), attach and detach on put, revoke and expire deleting
// the attached keys in one revision, time-to-live facts, listing; errors change nothing.
import { describe, expect, it } from "vitest";
import { Code, leaseId } from "../../src/kv/index.js";
import { b, Driver, del, expire, grant, opPut, put, recorder, revoke, s, txn } from "./support.js";

describe("lease grant", () => {
  it("picks ids 1, 2, 3 ... when asked for 0, skipping ids clients chose", () => {
    const d = new Driver();
    expect(d.grant(10)).toBe(1n);
    expect(d.grant(10, 3n)).toBe(3n);
    expect(d.grant(10)).toBe(2n);
    expect(d.grant(10)).toBe(4n);
    expect(d.store.leaseIds()).toEqual([1n, 2n, 3n, 4n]);
  });

  it("answers the granted ttl and does not bump the revision", () => {
    const d = new Driver();
    const r = d.ok(grant(30));
    expect(r.response.case === "leaseGrant" && [r.response.value.id, r.response.value.ttl]).toEqual([
      1n,
      30n,
    ]);
    expect(r.revision).toBe(0);
  });

  it("refuses an id already granted with FAILED_PRECONDITION", () => {
    const d = new Driver();
    d.grant(10, 0x1an);
    const r = d.fail(grant(20, 0x1an));
    expect([r.error.code, r.error.message]).toEqual([
      Code.FAILED_PRECONDITION,
      "lease_grant: lease 0x1a already exists",
    ]);
    expect(d.store.lease(0x1an)?.ttl).toBe(10);
  });

  it("refuses a TTL below the configured minimum at apply time too", () => {
    const d = Driver.with({ limits: { minLeaseTtlSeconds: 10 } });
    const r = d.fail(grant(9));
    expect(r.error.code).toBe(Code.INVALID_ARGUMENT);
    expect(d.store.leaseIds()).toEqual([]);
    expect(d.store.nextLeaseId).toBe(1n);
  });
});

describe("keys attached to leases", () => {
  it("refuses a put naming an unknown lease with NOT_FOUND, changing nothing", () => {
    const d = new Driver();
    d.ok(put("k", "1"));
    const r = d.fail(put("k", "2", { lease: 0x1an }));
    expect([r.error.code, r.error.message]).toEqual([Code.NOT_FOUND, "put: lease 0x1a does not exist"]);
    expect([s(d.kv("k")?.value), d.store.revision]).toEqual(["1", 1]);
  });

  it("moves a key from one lease to another, detaching it from the first", () => {
    const d = new Driver();
    const l1 = d.grant(10);
    const l2 = d.grant(10);
    d.ok(put("k", "1", { lease: l1 }));
    d.ok(put("k", "2", { lease: l2 }));
    expect(d.store.lease(l1)?.keys).toEqual([]);
    expect(d.store.lease(l2)?.keys.map(s)).toEqual(["k"]);
    d.ok(revoke(l1));
    expect(s(d.kv("k")?.value)).toBe("2");
  });

  it("detaches a key put again without a lease", () => {
    const d = new Driver();
    const l = d.grant(10);
    d.ok(put("k", "1", { lease: l }));
    d.ok(put("k", "2"));
    expect([d.kv("k")?.lease, d.store.lease(l)?.keys]).toEqual([0n, []]);
    d.ok(revoke(l));
    expect(d.kv("k")).toBeDefined();
  });

  it("detaches a deleted key, so a later key of that name is not revoked with the lease", () => {
    const d = new Driver();
    const l = d.grant(10);
    d.ok(put("k", "1", { lease: l }));
    d.ok(del("k"));
    d.ok(put("k", "again"));
    d.ok(revoke(l));
    expect(s(d.kv("k")?.value)).toBe("again");
  });

  it("attaches keys put inside a txn", () => {
    const d = new Driver();
    const l = d.grant(10);
    d.ok(txn([], [opPut("a", "1", l), opPut("b", "1", l)]));
    expect(d.store.lease(l)?.keys.map(s)).toEqual(["a", "b"]);
  });
});

describe("revoke and expire", () => {
  for (const [name, end] of [
    ["revoke", revoke],
    ["expire", expire],
  ] as const) {
    it(`${name} deletes every attached key in one revision, and the lease`, () => {
      const d = new Driver();
      const l = d.grant(10);
      d.ok(put("n/b", "1", { lease: l }));
      d.ok(put("n/a", "1", { lease: l }));
      d.ok(put("keep", "1"));
      const rec = recorder();
      d.store.watch({ key: b(""), prefix: true }, rec.sink);
      const r = d.ok(end(l));
      expect(r.revision).toBe(4);
      expect(rec.seen).toEqual(["4: DELETE n/a, DELETE n/b"]);
      expect([d.kv("n/a"), d.kv("n/b"), s(d.kv("keep")?.value)]).toEqual([undefined, undefined, "1"]);
      expect(d.store.lease(l)).toBeUndefined();
    });
  }

  it("does not bump the revision for a lease without keys", () => {
    const d = new Driver();
    d.ok(put("a", "1"));
    const l = d.grant(10);
    expect(d.ok(revoke(l)).revision).toBe(1);
  });

  it("answers NOT_FOUND for an unknown lease (an expiry racing a revoke is harmless)", () => {
    const d = new Driver();
    const l = d.grant(10);
    d.ok(revoke(l));
    const r = d.fail(expire(l));
    expect([r.error.code, r.error.message]).toEqual([
      Code.NOT_FOUND,
      "lease_expire: lease 0x1 does not exist",
    ]);
    expect(d.fail(revoke(0x1an)).error.message).toBe("lease_revoke: lease 0x1a does not exist");
  });

  it("never reuses a revoked lease's id for an automatic grant", () => {
    const d = new Driver();
    const l = d.grant(10);
    d.ok(revoke(l));
    expect(d.grant(10)).toBe(2n);
  });
});

describe("time-to-live facts", () => {
  it("reports the granted ttl and attached keys in bytewise order", () => {
    const d = new Driver();
    const l = d.grant(42);
    d.ok(put("z", "1", { lease: l }));
    d.ok(put("a", "1", { lease: l }));
    const info = d.store.lease(l);
    expect([info?.id, info?.ttl, info?.keys.map(s)]).toEqual([leaseId(1), 42, ["a", "z"]]);
    expect(d.store.lease(99n)).toBeUndefined();
    expect(d.store.leaseTtl(leaseId(l))).toBe(42);
  });
});
