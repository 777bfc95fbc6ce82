// The leader's expiry clock, driven by a fake monotonic time and a real store's lease state.
import { describe, expect, it } from "vitest";
import { Code, KvError, type LeaseId, Lessor, leaseId } from "../../src/kv/index.js";
import { Driver, expire, put, revoke } from "./support.js";

function setup(ttls: number[]) {
  const d = new Driver();
  const ids = ttls.map((t) => leaseId(d.grant(t)));
  return { d, ids, lessor: new Lessor(d.store) };
}

/** The leader's loop: propose what expired() hands out, as committed LeaseExpire commands. */
function expireDue(d: Driver, lessor: Lessor, now: number): LeaseId[] {
  const due = lessor.expired(now);
  for (const id of due) {
    d.ok(expire(id));
    lessor.onRevoke(id);
  }
  return due;
}

describe("lessor", () => {
  it("decides nothing and renews nothing until promoted", () => {
    const { ids, lessor } = setup([5]);
    expect(lessor.expired(1_000_000)).toEqual([]);
    expect(lessor.remainingMs(ids[0] as LeaseId, 0)).toBeUndefined();
    expect(() => lessor.keepAlive(ids[0] as LeaseId, 0)).toThrow(KvError);
    try {
      lessor.keepAlive(ids[0] as LeaseId, 0);
    } catch (e) {
      expect((e as KvError).code).toBe(Code.FAILED_PRECONDITION);
    }
  });

  it("expires a lease exactly its TTL after promotion, and its keys with it", () => {
    const { d, ids, lessor } = setup([5, 10]);
    d.ok(put("k", "v", { lease: ids[0] }));
    lessor.promote(1000);
    expect(lessor.remainingMs(ids[0] as LeaseId, 1000)).toBe(5000);
    expect(expireDue(d, lessor, 5999)).toEqual([]);
    expect(expireDue(d, lessor, 6000)).toEqual([ids[0]]);
    expect(d.kv("k")).toBeUndefined();
    expect(expireDue(d, lessor, 10_999)).toEqual([]);
    expect(expireDue(d, lessor, 11_000)).toEqual([ids[1]]);
    expect(d.store.leaseIds()).toEqual([]);
  });

  it("keep-alive restarts the full TTL from now and answers it in seconds", () => {
    const { d, ids, lessor } = setup([5]);
    const id = ids[0] as LeaseId;
    lessor.promote(0);
    expect(lessor.keepAlive(id, 4000)).toBe(5);
    expect(lessor.remainingMs(id, 4000)).toBe(5000);
    expect(expireDue(d, lessor, 8999)).toEqual([]);
    expect(expireDue(d, lessor, 9000)).toEqual([id]);
    expect(lessor.keepAlive(id, 9001)).toBeUndefined();
  });

  it("never renews a lease whose time is up, even before its expiry has applied", () => {
    const { d, ids, lessor } = setup([5, 5]);
    const [late, handedOut] = ids as [LeaseId, LeaseId];
    lessor.promote(0);
    // Time is up but expired() has not run yet: renewing now would promise keys that are about to vanish.
    expect(lessor.keepAlive(late, 5000)).toBeUndefined();
    expect(lessor.expired(5000)).toEqual([late, handedOut]);
    // Handed out for expiry: still refused, and reported as 0 ms left, until the expiry applies.
    expect(lessor.keepAlive(handedOut, 5001)).toBeUndefined();
    expect(lessor.remainingMs(handedOut, 5001)).toBe(0);
    expect(expireDue(d, lessor, 6000)).toEqual([late, handedOut]);
    expect(d.store.leaseIds()).toEqual([]);
  });

  it("a new leader may renew a lease whose expiry the old leader proposed but never committed", () => {
    const { ids, lessor } = setup([5]);
    const id = ids[0] as LeaseId;
    lessor.promote(0);
    expect(lessor.expired(5000)).toEqual([id]);
    lessor.demote();
    lessor.promote(5100);
    expect(lessor.keepAlive(id, 5200)).toBe(5);
  });

  it("restarts every remaining TTL on promotion, so a leader change never expires a lease early", () => {
    const { d, ids, lessor } = setup([5]);
    const id = ids[0] as LeaseId;
    lessor.promote(0);
    expect(lessor.remainingMs(id, 4900)).toBe(100);
    // Leadership moves away and back (or to another member whose lessor starts fresh): the clock restarts.
    lessor.demote();
    expect(lessor.expired(5000)).toEqual([]);
    lessor.promote(5000);
    expect(lessor.remainingMs(id, 5000)).toBe(5000);
    expect(expireDue(d, lessor, 9999)).toEqual([]);
    expect(expireDue(d, lessor, 10_000)).toEqual([id]);
  });

  it("a fresh lessor on another member over the same replicated state gives full TTLs too", () => {
    const { d, ids } = setup([7]);
    const other = new Lessor(d.store);
    other.promote(123_000);
    expect(other.remainingMs(ids[0] as LeaseId, 123_000)).toBe(7000);
  });

  it("starts a granted lease's clock at onGrant", () => {
    const { d, lessor } = setup([]);
    lessor.promote(0);
    const id = leaseId(d.grant(5));
    lessor.onGrant(id, 2000);
    expect(expireDue(d, lessor, 6999)).toEqual([]);
    expect(expireDue(d, lessor, 7000)).toEqual([id]);
  });

  it("gives a lease it never heard of (installed from a snapshot) a full TTL from when it first sees it", () => {
    const { d, lessor } = setup([]);
    lessor.promote(0);
    const id = leaseId(d.grant(5));
    expect(lessor.expired(3000)).toEqual([]);
    expect(lessor.expired(7999)).toEqual([]);
    expect(lessor.expired(8000)).toEqual([id]);
  });

  it("hands an expired lease out again after retryMs if its expiry was not applied", () => {
    const d = new Driver();
    const id = leaseId(d.grant(5));
    const lessor = new Lessor(d.store, { retryMs: 500 });
    lessor.promote(0);
    expect(lessor.expired(5000)).toEqual([id]);
    expect(lessor.expired(5499)).toEqual([]);
    expect(lessor.expired(5500)).toEqual([id]);
  });

  it("forgets a revoked lease", () => {
    const { d, ids, lessor } = setup([5]);
    const id = ids[0] as LeaseId;
    lessor.promote(0);
    d.ok(revoke(id));
    lessor.onRevoke(id);
    expect(lessor.expired(60_000)).toEqual([]);
    expect(lessor.remainingMs(id, 0)).toBeUndefined();
  });

  it("drops a lease revoked without onRevoke the next time it looks", () => {
    const { d, ids, lessor } = setup([5, 5]);
    lessor.promote(0);
    d.ok(revoke(ids[0] as LeaseId));
    expect(lessor.expired(5000)).toEqual([ids[1]]);
  });

  it("hands out several due leases in id order", () => {
    const { ids, lessor } = setup([6, 5, 5]);
    lessor.promote(0);
    expect(lessor.expired(6000)).toEqual(ids);
  });
});
