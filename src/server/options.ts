// What one member needs to run: identity, addresses, data folder, timing. The agent fills this from a
// node file or flags; tests fill it directly.

import type { Logger } from "pino";

export interface TlsFiles {
  /** PEM contents (not paths): the cluster CA, this member's certificate and key. */
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface MemberOptions {
  readonly name: string;
  readonly clusterId: string;
  /** host:port the peer (Raft + forwarded client) server binds. */
  readonly peerListen: string;
  /** host:port other members dial (defaults to peerListen). */
  readonly peerAdvertise?: string;
  /** Extra client endpoints: TCP host:port, and a unix socket path (root-only permissions). */
  readonly clientListen?: string;
  readonly clientSocket?: string;
  readonly dataDir: string;
  /**
   * Founding members and their peer addresses; ignored when the data folder already holds state. A member
   * joining an existing cluster starts with `join: true` and the current members here, and waits to be
   * added as a learner.
   */
  readonly initialCluster?: Readonly<Record<string, string>>;
  readonly join?: boolean;
  readonly tls?: TlsFiles;
  readonly tickMs?: number;
  readonly electionTicks?: number;
  readonly heartbeatTicks?: number;
  /** Take a snapshot after this many applied entries; keep this many entries behind it for slow peers. */
  readonly snapshotEntries?: number;
  readonly catchUpEntries?: number;
  /** How long a client's write or read may wait for the cluster. */
  readonly requestTimeoutMs?: number;
  readonly minLeaseTtlSeconds?: number;
  readonly logger: Logger;
}

export interface ResolvedOptions
  extends Required<Omit<MemberOptions, "tls" | "clientListen" | "clientSocket" | "initialCluster">> {
  readonly tls?: TlsFiles;
  readonly clientListen?: string;
  readonly clientSocket?: string;
  readonly initialCluster?: Readonly<Record<string, string>>;
}

export function resolveOptions(o: MemberOptions): ResolvedOptions {
  const r: ResolvedOptions = {
    peerAdvertise: o.peerListen,
    join: false,
    tickMs: 100,
    electionTicks: 10,
    heartbeatTicks: 1,
    snapshotEntries: 10_000,
    catchUpEntries: 5_000,
    requestTimeoutMs: 5_000,
    minLeaseTtlSeconds: 3,
    ...o,
  };
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(r.name)) {
    throw new Error(`member name '${r.name}' must be 1-63 letters, digits, '.', '_' or '-'`);
  }
  if (!r.join && !r.initialCluster) throw new Error("initialCluster is required unless join is set");
  if (r.join && !Object.keys(r.initialCluster ?? {}).some((n) => n !== r.name)) {
    throw new Error(
      "initialCluster must name the current members when joining (their streams are refused otherwise)",
    );
  }
  if (r.initialCluster && !r.join && !(r.name in r.initialCluster)) {
    throw new Error(`initialCluster does not name this member '${r.name}'`);
  }
  if (r.tickMs <= 0 || r.electionTicks <= r.heartbeatTicks)
    throw new Error("electionTicks must exceed heartbeatTicks");
  // A lease must outlive an election (at most 2 election timeouts) or it could expire before its holder
  // reaches the new leader.
  const electionMaxS = (2 * r.electionTicks * r.tickMs) / 1000;
  if (r.minLeaseTtlSeconds <= electionMaxS) {
    throw new Error(
      `minLeaseTtlSeconds ${r.minLeaseTtlSeconds} must exceed the longest election (${electionMaxS} s)`,
    );
  }
  return r;
}
