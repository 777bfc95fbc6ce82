// One leader-kill round: kill -9 the leader, then time until a surviving member answers a write (which
// means a new leader committed it). Probes start every `probeEveryMs` on every survivor and each waits up
// to `probeDeadlineMs`, so the figure has that granularity whatever each product does with a write that
// arrives while there is no leader (refuse at once, or hold it until a leader appears).

import { sleep, waitFor } from "./procs.js";
import type { Cluster } from "./system.js";

export interface FailoverRound {
  readonly killed: number;
  /** From the kill until the first acknowledged write through a survivor, in ms. */
  readonly ms: number;
  readonly newLeader: number | undefined;
}

export async function leaderKillRound(
  c: Cluster,
  round: number,
  value: Uint8Array,
  opts: { probeEveryMs?: number; probeDeadlineMs?: number; giveUpMs?: number } = {},
): Promise<FailoverRound> {
  const every = opts.probeEveryMs ?? 20;
  const deadline = opts.probeDeadlineMs ?? 2000;
  const giveUp = opts.giveUpMs ?? 30_000;
  const killed = await waitFor(`${c.name}: a leader all members agree on`, 30_000, () => c.leader());
  const survivors = Array.from({ length: c.size }, (_, i) => i).filter((i) => i !== killed);
  const clients = survivors.map((i) => c.memberClient(i, deadline));
  // Connect before the kill, so the first probes do not pay for a TCP and HTTP/2 handshake.
  await Promise.all(clients.map((d) => d.get("/bench/failover/warm").catch(() => {})));

  const t0 = performance.now();
  await c.kill(killed);
  let answeredAt: number | undefined;
  const inflight: Promise<void>[] = [];
  let seq = 0;
  while (answeredAt === undefined && performance.now() - t0 < giveUp) {
    for (const d of clients) {
      const key = `/bench/failover/${round}/${seq++}`;
      inflight.push(
        d.put(key, value).then(
          () => {
            answeredAt ??= performance.now();
          },
          () => {},
        ),
      );
    }
    await sleep(every);
  }
  await Promise.all(inflight);
  for (const d of clients) d.close();
  if (answeredAt === undefined)
    throw new Error(`${c.name}: no write answered within ${giveUp} ms of the kill`);
  const ms = answeredAt - t0;
  const newLeader = await waitFor(`${c.name}: the new leader`, 30_000, () => c.leader());
  await c.restart(killed);
  return { killed, ms, newLeader };
}
