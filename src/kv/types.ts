// The KV store's own value types. Revisions and lease ids are distinct types so that one is never passed
// where the other is meant; both cross the wire as protobuf int64 (bigint) and are converted at the edge.

declare const revisionBrand: unique symbol;
declare const leaseIdBrand: unique symbol;

/** The store's global revision: 0 for an empty store, +1 per write command that changed something. */
export type Revision = number & { readonly [revisionBrand]: true };
export const revision = (n: number): Revision => n as Revision;

/** A lease id; 0 means "no lease". */
export type LeaseId = bigint & { readonly [leaseIdBrand]: true };
export const leaseId = (n: bigint | number): LeaseId => BigInt(n) as LeaseId;
export const NO_LEASE = leaseId(0n);

/** Lease ids are shown in hex, as etcd does ("lease 0x1a does not exist"). */
export function formatLeaseId(id: bigint): string {
  return id < 0n ? `-0x${(-id).toString(16)}` : `0x${id.toString(16)}`;
}

/** int64 from the wire to a revision; a revision beyond 2^53 cannot be reached by this store. */
export function revisionFromWire(n: bigint): Revision {
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return revision(Number.MAX_SAFE_INTEGER);
  if (n < BigInt(Number.MIN_SAFE_INTEGER)) return revision(Number.MIN_SAFE_INTEGER);
  return revision(Number(n));
}
