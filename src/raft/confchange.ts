// Membership changes, one server at a time. A ConfChange travels through the log as an entry of type
// ConfChange and takes effect on every member when that entry is applied.

import { assert } from "./errors.js";
import type { ConfState, NodeId } from "./types.js";

export enum ConfChangeType {
  /** Adds a voter, or promotes an existing learner to voter. */
  AddNode = "add-node",
  AddLearner = "add-learner",
  RemoveNode = "remove-node",
}

export interface ConfChange {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
  /** Opaque to the core; the server layer carries the member's address here. */
  readonly context?: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return enc.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const v = JSON.parse(dec.decode(data)) as ConfChange;
  assert(
    Object.values(ConfChangeType).includes(v.type) && typeof v.nodeId === "string" && v.nodeId !== "",
    "malformed conf change entry",
  );
  return v;
}

/** The configuration after `cc`; throws on a change that makes no sense for `cs`. */
export function applyToConfState(cs: ConfState, cc: ConfChange): ConfState {
  const voters = new Set(cs.voters);
  const learners = new Set(cs.learners);
  switch (cc.type) {
    case ConfChangeType.AddNode:
      learners.delete(cc.nodeId);
      voters.add(cc.nodeId);
      break;
    case ConfChangeType.AddLearner:
      if (voters.has(cc.nodeId)) return cs; // demotion is not supported; validated at proposal time
      learners.add(cc.nodeId);
      break;
    case ConfChangeType.RemoveNode:
      voters.delete(cc.nodeId);
      learners.delete(cc.nodeId);
      break;
  }
  return { voters: [...voters].sort(), learners: [...learners].sort() };
}

/** Why `cc` may not be proposed against `cs`, or undefined when it may. */
export function validateConfChange(cs: ConfState, cc: ConfChange): string | undefined {
  const isVoter = cs.voters.includes(cc.nodeId);
  const isLearner = cs.learners.includes(cc.nodeId);
  switch (cc.type) {
    case ConfChangeType.AddNode:
      return isVoter ? `${cc.nodeId} is already a voter` : undefined;
    case ConfChangeType.AddLearner:
      if (isVoter) return `${cc.nodeId} is a voter; demoting a voter to learner is not supported`;
      return isLearner ? `${cc.nodeId} is already a learner` : undefined;
    case ConfChangeType.RemoveNode:
      if (!isVoter && !isLearner) return `${cc.nodeId} is not a member`;
      if (isVoter && cs.voters.length === 1) return `${cc.nodeId} is the last voter and cannot be removed`;
      return undefined;
  }
}
