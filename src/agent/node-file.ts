// The agent's node file (written by the installer) and the equivalent command-line flags, validated with
// the same schema: one member's identity, addresses, data folder, TLS files and timing.

import { readFileSync } from "node:fs";
import { z } from "zod";
import type { MemberOptions } from "../server/options.js";

const hostPort = z.string().regex(/^[A-Za-z0-9.-]+:\d{1,5}$/, "must be host:port");

export const NodeFileSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "must be 1-63 letters, digits, '.', '_' or '-'"),
    clusterId: z.string().min(1),
    peerListen: hostPort,
    peerAdvertise: hostPort.optional(),
    clientListen: hostPort.optional(),
    clientSocket: z.string().startsWith("/", "must be an absolute path").optional(),
    dataDir: z.string().startsWith("/", "must be an absolute path"),
    initialCluster: z.record(z.string(), hostPort).optional(),
    join: z.boolean().optional(),
    tls: z.object({ ca: z.string(), cert: z.string(), key: z.string() }).strict().optional(),
    tickMs: z.number().int().positive().optional(),
    electionTicks: z.number().int().positive().optional(),
    snapshotEntries: z.number().int().positive().optional(),
    catchUpEntries: z.number().int().nonnegative().optional(),
    minLeaseTtlSeconds: z.number().int().positive().optional(),
    /** Rotated log files go here; an installed agent (node file) defaults to /var/log/z, "-" means stderr. */
    logDir: z.union([z.literal("-"), z.string().startsWith("/", "must be an absolute path or -")]).optional(),
    /** host:port of the Prometheus endpoint (GET /metrics), e.g. 127.0.0.1:9780; absent: no endpoint. */
    metricsListen: hostPort.optional(),
    /** Run the MN-VM HA agent on this node (the consensus member runs regardless). */
    ha: z
      .object({
        /** libvirt URI, e.g. qemu:///system; `sim` for the simulated driver (demo). */
        hypervisorUri: z.string().min(1),
        seedDir: z.string().startsWith("/", "must be an absolute path").optional(),
        /** Migration URI template: {ip} and {node} are replaced with the target's. */
        migrationUri: z.string().optional(),
      })
      .strict()
      .optional(),
  })
  .strict()
  .refine((n) => n.initialCluster, {
    message: "initialCluster is required (with join: the current members, whose streams are accepted)",
  });

export type NodeFile = z.infer<typeof NodeFileSchema>;

/** Validates a node file's content; throws one line per problem, naming the field. */
export function parseNodeFile(json: unknown, source: string): NodeFile {
  const r = NodeFileSchema.safeParse(json);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => `${source}: ${i.path.join(".") || "(file)"}: ${i.message}`);
  throw new Error(lines.join("\n"));
}

export function readNodeFile(path: string): NodeFile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new Error(`cannot read node file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`node file ${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseNodeFile(json, path);
}

/** Parses `n1=host:port,n2=host:port`. */
export function parseInitialCluster(s: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of s
    .split(",")
    .map((p) => p.trim())
    .filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`--initial-cluster: '${part}' must be name=host:port`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

export function memberOptions(n: NodeFile, logger: MemberOptions["logger"]): MemberOptions {
  const read = (what: string, p: string) => {
    try {
      return readFileSync(p);
    } catch (e) {
      throw new Error(`cannot read TLS ${what} file ${p}: ${(e as Error).message}`);
    }
  };
  // logDir and metricsListen are the agent's, not the member's.
  const { tls, logDir: _logDir, metricsListen: _metricsListen, ...rest } = n;
  return {
    ...rest,
    ...(tls
      ? { tls: { ca: read("CA", tls.ca), cert: read("certificate", tls.cert), key: read("key", tls.key) } }
      : {}),
    logger,
  };
}
