// Splits one failover into its three phases from the agents' HA events (pino JSON lines, `time` in epoch
// ms): detection (owner gone -> the Raft leader's controller assigns the MN-VM elsewhere: the owner lease
// TTL, plus an election when the owner also led Raft), re-assignment (when the first survivor chosen failed
// to start it), fencing (the new owner took ownership -> every other
// writer of the image is fenced) and start (fenced -> libvirt started the MN-VM). The same split as
// bench/failover.ts, written once for the real-stack bench, where each agent's log holds many trials: only
// events at or after the power loss count, and the first of each is taken.

export interface HaEvent {
  readonly time: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface FailoverSplit {
  /** Power loss -> the controller's first assignment of the MN-VM to a survivor. */
  readonly detectMs: number;
  /**
   * First assignment -> the assignment to the node that finally ran it (0 when the first one did): time
   * lost on a survivor that took the MN-VM and failed to start it.
   */
  readonly reassignMs: number;
  /** Ownership taken -> fencing done. */
  readonly fenceMs: number;
  /** Fencing done -> the MN-VM started by libvirt. */
  readonly startMs: number;
  /** Power loss -> the MN-VM started (the sum, from the logs alone). */
  readonly totalMs: number;
  /** Final assignment -> ownership taken (the new owner's agent noticing it). */
  readonly claimMs: number;
  /** Power loss -> a survivor became Raft leader (part of detection), when the lost owner led Raft. */
  readonly electedMs?: number;
}

/** The agent log lines the split and failure trails use: HA events, Raft role changes, lease expiries. */
export const EVENT_PATTERNS = ['"msg":"ha.', '"msg":"member.role"', '"msg":"member.lease-expired"'];

/** Parses pino JSON lines, keeping the events of EVENT_PATTERNS (lines cut by a power loss are skipped). */
export function parseHaEvents(text: string): HaEvent[] {
  const out: HaEvent[] = [];
  for (const line of text.split("\n")) {
    if (!EVENT_PATTERNS.some((p) => line.includes(p))) continue;
    try {
      const e = JSON.parse(line) as HaEvent;
      if (typeof e.time === "number") out.push(e);
    } catch {
      // a line cut short when its host lost power
    }
  }
  return out;
}

/**
 * The split of the failover that began at `killedAt` and ended with the MN-VM on `to`; `events` holds every
 * survivor's HA events. Throws naming the event that is missing.
 */
export function splitFailover(o: {
  killedAt: number;
  to: string;
  events: ReadonlyMap<string, readonly HaEvent[]>;
}): FailoverSplit {
  const first = (node: string, msg: string, pred: (e: HaEvent) => boolean = () => true) => {
    const e = (o.events.get(node) ?? []).find((x) => x.time >= o.killedAt && x.msg === msg && pred(x));
    if (!e) throw new Error(`failover split: no ${msg} on ${node} after ${o.killedAt}`);
    return e.time;
  };
  // Applied assignments after the loss, on whichever survivor led Raft at the time.
  const assignments = [...o.events.values()]
    .flatMap((es) =>
      es.filter((e) => {
        const d = e.decision as { kind?: string; node?: string } | undefined;
        return (
          e.time >= o.killedAt &&
          e.msg === "ha.controller-decision" &&
          e.applied === true &&
          d?.kind === "assign"
        );
      }),
    )
    .sort((a, b) => a.time - b.time);
  const firstAssigned = assignments[0]?.time;
  const assigned = assignments.find((e) => (e.decision as { node?: string }).node === o.to)?.time;
  if (firstAssigned === undefined || assigned === undefined)
    throw new Error(`failover split: no applied assignment to ${o.to}`);
  const taken = first(o.to, "ha.ownership-taken");
  const fenced = first(o.to, "ha.fenced");
  const started = first(o.to, "ha.started");
  const elected = Math.min(
    ...[...o.events.values()].flatMap((es) =>
      es
        .filter((e) => e.time >= o.killedAt && e.msg === "member.role" && e.state === "leader")
        .map((e) => e.time),
    ),
  );
  return {
    ...(Number.isFinite(elected) ? { electedMs: elected - o.killedAt } : {}),
    detectMs: firstAssigned - o.killedAt,
    reassignMs: assigned - firstAssigned,
    claimMs: taken - assigned,
    fenceMs: fenced - taken,
    startMs: started - fenced,
    totalMs: started - o.killedAt,
  };
}
