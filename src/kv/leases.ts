// The replicated part of leases: which leases exist, their granted TTL and the keys attached to each.
// When a lease expires is not replicated state: the leader's Lessor decides and proposes LeaseExpire.
import type { KeyString } from "./keys.js";
import { type LeaseId, leaseId } from "./types.js";

export interface Lease {
  readonly id: LeaseId;
  /** Granted TTL in seconds. */
  readonly ttl: number;
  readonly keys: Set<KeyString>;
}

export class LeaseTable {
  readonly #leases = new Map<LeaseId, Lease>();
  /** The id the next grant without an id gets (skipping ids in use); replicated, so every member agrees. */
  #nextId: LeaseId = leaseId(1n);

  get nextId(): LeaseId {
    return this.#nextId;
  }

  set nextId(id: LeaseId) {
    this.#nextId = id;
  }

  get size(): number {
    return this.#leases.size;
  }

  get(id: bigint): Lease | undefined {
    return this.#leases.get(id as LeaseId);
  }

  has(id: bigint): boolean {
    return this.#leases.has(id as LeaseId);
  }

  /** Every lease, by increasing id (a deterministic order for snapshots and listings). */
  sorted(): Lease[] {
    return [...this.#leases.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** The id a grant asking for `requested` (0: any) receives. */
  pickId(requested: bigint): LeaseId {
    if (requested !== 0n) return requested as LeaseId;
    let id = this.#nextId;
    while (this.#leases.has(id)) id = leaseId(id + 1n);
    return id;
  }

  /** `picked`: the store chose the id (pickId(0)), so the next automatic id moves past it. */
  grant(id: LeaseId, ttl: number, picked: boolean): Lease {
    const lease: Lease = { id, ttl, keys: new Set() };
    this.#leases.set(id, lease);
    if (picked) this.#nextId = leaseId(id + 1n);
    return lease;
  }

  remove(id: LeaseId): void {
    this.#leases.delete(id);
  }

  attach(id: bigint, key: KeyString): void {
    this.#leases.get(id as LeaseId)?.keys.add(key);
  }

  detach(id: bigint, key: KeyString): void {
    this.#leases.get(id as LeaseId)?.keys.delete(key);
  }
}
