// Membership and member status. Every member answers the same: list and changes are served by the leader
// (forwarded from followers), unless the caller asks for this member's own view.

import { create } from "@bufbuild/protobuf";
import * as clusterpb from "../gen/zsha/cluster/v1/cluster_pb.js";
import { Code, RpcError, type ServiceImpl } from "../grpc/index.js";
import { ConfChangeType, nodeId, ProgressState, StateType } from "../raft/index.js";
import type { Member } from "../server/member.js";
import type { LeaderForwarder } from "./forward.js";

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
const ADDRESS = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

function members(member: Member): clusterpb.Member[] {
  const cs = member.status().config;
  return [
    ...cs.voters.map((n) => ({ n, learner: false })),
    ...cs.learners.map((n) => ({ n, learner: true })),
  ].map(({ n, learner }) =>
    create(clusterpb.MemberSchema, { name: n, peerAddress: member.peerAddress(n) ?? "", isLearner: learner }),
  );
}

function requireName(what: string, name: string): void {
  if (!NAME.test(name)) {
    throw new RpcError(
      Code.INVALID_ARGUMENT,
      `${what}: name '${name}' must be 1-63 letters, digits, '.', '_' or '-'`,
    );
  }
}

function requireMember(member: Member, what: string, name: string): void {
  const cs = member.status().config;
  if (!cs.voters.includes(nodeId(name)) && !cs.learners.includes(nodeId(name))) {
    throw new RpcError(
      Code.NOT_FOUND,
      `${what}: '${name}' is not a member of this cluster; members: ${[...cs.voters, ...cs.learners].join(", ")}`,
    );
  }
}

/** This member's view of every member (the leader's view is the complete one). */
export function memberList(member: Member): clusterpb.MemberListResponse {
  const st = member.status();
  const now = performance.now();
  const electionMs = member.opts.electionTicks * member.opts.tickMs;
  const list = members(member).map((m) => {
    const self = m.name === member.opts.name;
    const pr = st.progress?.get(nodeId(m.name));
    const heard = member.lastHeard.get(m.name);
    const lastContact = self ? 0 : heard === undefined ? -1 : Math.round(now - heard);
    let role = "follower";
    if (m.isLearner) role = "learner";
    if (m.name === st.lead) role = "leader";
    if (self) role = m.isLearner ? "learner" : st.state;
    if (!self && st.state !== StateType.Leader && m.name !== st.lead)
      role = m.isLearner ? "learner" : "unknown";
    return create(clusterpb.MemberStatusSchema, {
      member: m,
      role,
      term: self || m.name === st.lead ? BigInt(st.term) : 0n,
      commitIndex: self ? BigInt(st.commit) : 0n,
      appliedIndex: self ? BigInt(st.applied) : 0n,
      lastContactMs: BigInt(lastContact),
      alive: self || (lastContact >= 0 && lastContact < electionMs) || (pr?.recentActive ?? false),
      matchIndex: BigInt(pr?.match ?? 0),
    });
  });
  return create(clusterpb.MemberListResponseSchema, {
    answeredBy: member.opts.name,
    leader: st.lead,
    term: BigInt(st.term),
    members: list,
  });
}

export function clusterService(
  member: Member,
  fwd: LeaderForwarder,
): ServiceImpl<typeof clusterpb.ClusterService.method> {
  return {
    async memberList(req) {
      if (req.local || member.isLeader()) return memberList(member);
      return fwd.leader().memberList();
    },
    async memberAddLearner(req) {
      requireName("member_add_learner", req.name);
      if (!ADDRESS.test(req.peerAddress)) {
        throw new RpcError(
          Code.INVALID_ARGUMENT,
          `member_add_learner: peer_address '${req.peerAddress}' must be host:port`,
        );
      }
      if (!member.isLeader()) return fwd.leader().memberAddLearner(req.name, req.peerAddress);
      await member.changeMembership({
        type: ConfChangeType.AddLearner,
        nodeId: nodeId(req.name),
        context: req.peerAddress,
      });
      return { members: members(member) };
    },
    async memberPromote(req) {
      requireName("member_promote", req.name);
      if (!member.isLeader()) return fwd.leader().memberPromote(req.name);
      requireMember(member, "member_promote", req.name);
      const pr = member.status().progress?.get(nodeId(req.name));
      if (pr && pr.state !== ProgressState.Replicate) {
        throw new RpcError(
          Code.FAILED_PRECONDITION,
          `member_promote: learner '${req.name}' is still catching up (${pr.state}, at ${pr.match} of ${member.status().lastIndex}); retry shortly`,
        );
      }
      await member.changeMembership({
        type: ConfChangeType.AddNode,
        nodeId: nodeId(req.name),
        context: member.peerAddress(req.name) ?? "",
      });
      return { members: members(member) };
    },
    async memberRemove(req) {
      requireName("member_remove", req.name);
      if (!member.isLeader()) return fwd.leader().memberRemove(req.name);
      requireMember(member, "member_remove", req.name);
      await member.changeMembership({ type: ConfChangeType.RemoveNode, nodeId: nodeId(req.name) });
      return { members: members(member) };
    },
    async transferLeadership(req) {
      if (req.to !== "") requireName("transfer_leadership", req.to);
      if (!member.isLeader()) return fwd.leader().transferLeadership(req.to);
      const st = member.status();
      let to = req.to;
      if (to === "") {
        // The most up-to-date other voter.
        let best = -1;
        for (const v of st.config.voters) {
          const m = st.progress?.get(v)?.match ?? 0;
          if (v !== member.opts.name && m > best) {
            best = m;
            to = v;
          }
        }
        if (to === "")
          throw new RpcError(
            Code.FAILED_PRECONDITION,
            "transfer_leadership: there is no other voter to hand over to",
          );
      } else {
        requireMember(member, "transfer_leadership", to);
        if (to === member.opts.name) return { leader: to };
      }
      return { leader: await member.transferLeadership(nodeId(to)) };
    },
    async status() {
      const st = member.status();
      return {
        name: member.opts.name,
        leader: st.lead,
        role: st.state,
        term: BigInt(st.term),
        commitIndex: BigInt(st.commit),
        appliedIndex: BigInt(st.applied),
        lastIndex: BigInt(st.lastIndex),
        revision: BigInt(member.kv.revision),
        clusterId: member.opts.clusterId,
      };
    },
  };
}
