// Seconds left on the MN-VM owner's lease, read from a member's replicated KV and its leader-side lessor.
// Only the Raft leader keeps lease deadlines, so elsewhere the answer is "unknown" (the gauge is absent).

import { KEYS } from "../ha/records.js";
import { leaseId } from "../kv/index.js";
import type { Member } from "../server/member.js";

const OWNER_KEY = new TextEncoder().encode(KEYS.owner);

/** Returns the remaining seconds, 0 when no owner holds the MN-VM, undefined when this member cannot tell. */
export function ownerLeaseRemaining(
  member: Pick<Member, "kv" | "lessor">,
  now = performance.now(),
): number | undefined {
  const owner = member.kv.get(OWNER_KEY);
  if (!owner || owner.lease === 0n) return 0;
  const ms = member.lessor.remainingMs(leaseId(owner.lease), now);
  return ms === undefined ? undefined : ms / 1000;
}
