// Lease expiry, decided by the leader alone. Expiry times live only in the leader's memory, measured on its
// injected monotonic clock (ms); an expired lease is proposed as a LeaseExpire command and its keys vanish
// when that commits, the same on every member. On promotion every lease's clock restarts at its full TTL:
// the old leader's timers are lost, and restarting (rather than guessing what was left) means no lease ever
// expires early because leadership moved (etcd's lessor.Promote does the same). The minimum TTL keeps a
// lease longer than an election, so its holder has time to reach the new leader and renew.
import { Code, KvError } from "./errors.js";
import type { LeaseSource } from "./store.js";
import type { LeaseId } from "./types.js";

export interface LessorOptions {
  /**
   * After `expired()` hands out a lease, how long to wait before handing it out again if it still exists
   * (the LeaseExpire proposal was lost, e.g. to a leader change). Default 1000 ms.
   */
  readonly retryMs?: number;
}

export class Lessor {
  readonly #source: LeaseSource;
  readonly #retryMs: number;
  #primary = false;
  /** Lease id → monotonic ms at which it expires. Only kept while primary. */
  readonly #expiry = new Map<LeaseId, number>();
  /** Leases handed out by expired() whose LeaseExpire has not applied yet: they can no longer be renewed. */
  readonly #expiring = new Set<LeaseId>();

  constructor(source: LeaseSource, options: LessorOptions = {}) {
    this.#source = source;
    this.#retryMs = options.retryMs ?? 1000;
  }

  get isPrimary(): boolean {
    return this.#primary;
  }

  /** This member became leader: every lease gets its full TTL from `now`. */
  promote(now: number): void {
    this.#primary = true;
    this.#expiry.clear();
    this.#expiring.clear();
    for (const id of this.#source.leaseIds()) this.#expiry.set(id, now + this.#ttlMs(id));
  }

  /** This member is no longer leader: it forgets every expiry and decides none. */
  demote(): void {
    this.#primary = false;
    this.#expiry.clear();
    this.#expiring.clear();
  }

  /** A grant applied: on the leader, its clock starts now. */
  onGrant(id: LeaseId, now: number): void {
    if (this.#primary && this.#source.leaseTtl(id) !== undefined) this.#expiry.set(id, now + this.#ttlMs(id));
  }

  /** A revoke or expiry applied. */
  onRevoke(id: LeaseId): void {
    this.#expiry.delete(id);
    this.#expiring.delete(id);
  }

  /**
   * Renews a lease for its full TTL from `now`; returns that TTL in seconds, or undefined when the lease does
   * not exist or its time is already up. Only the leader renews: elsewhere it is FAILED_PRECONDITION (the
   * caller forwards to the leader).
   *
   * A lease whose time is up is never renewed, even while its LeaseExpire is still on its way through the
   * log: renewing it would tell the holder it keeps its keys just before they are deleted (etcd's Renew
   * likewise answers "not found" once a lease has expired). The holder learns it lost the lease instead.
   */
  keepAlive(id: LeaseId, now: number): number | undefined {
    if (!this.#primary) {
      throw new KvError(
        Code.FAILED_PRECONDITION,
        "lease_keep_alive: this member is not the leader; send keep-alives to the leader",
      );
    }
    const ttl = this.#source.leaseTtl(id);
    if (ttl === undefined) {
      this.#expiry.delete(id);
      this.#expiring.delete(id);
      return undefined;
    }
    const at = this.#expiry.get(id);
    if (this.#expiring.has(id) || (at !== undefined && at <= now)) return undefined;
    this.#expiry.set(id, now + ttl * 1000);
    return ttl;
  }

  /** Milliseconds until the lease expires, as this leader sees it; undefined when unknown or not leader. */
  remainingMs(id: LeaseId, now: number): number | undefined {
    if (!this.#primary || this.#source.leaseTtl(id) === undefined) return undefined;
    if (this.#expiring.has(id)) return 0;
    const at = this.#expiry.get(id) ?? now + this.#ttlMs(id);
    return Math.max(0, at - now);
  }

  /**
   * Leases whose time is up, by increasing id: the leader proposes a LeaseExpire for each. A lease handed
   * out here is handed out again after `retryMs` if it still exists. Leases the lessor has not heard of (a
   * grant applied from a snapshot) start their full TTL now, so they can only expire late, never early.
   */
  expired(now: number): LeaseId[] {
    if (!this.#primary) return [];
    const live = new Set(this.#source.leaseIds());
    for (const id of this.#expiry.keys()) {
      if (!live.has(id)) {
        this.#expiry.delete(id);
        this.#expiring.delete(id);
      }
    }
    const out: LeaseId[] = [];
    for (const id of live) {
      const at = this.#expiry.get(id);
      if (at === undefined) {
        this.#expiry.set(id, now + this.#ttlMs(id));
      } else if (at <= now) {
        out.push(id);
        this.#expiring.add(id);
        this.#expiry.set(id, now + this.#retryMs);
      }
    }
    return out;
  }

  #ttlMs(id: LeaseId): number {
    return (this.#source.leaseTtl(id) ?? 0) * 1000;
  }
}
