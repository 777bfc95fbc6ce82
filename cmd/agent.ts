// `zsha agent`: runs one member of the cluster from a node file (`--node-file`) or flags.

import { parseArgs } from "node:util";
import pino from "pino";
import {
  memberOptions,
  type NodeFile,
  parseInitialCluster,
  parseNodeFile,
  readNodeFile,
} from "../src/agent/node-file.js";
import { runHa } from "../src/agent/run-ha.js";
import { runMember } from "../src/api/serve.js";
import { buildInfo } from "../src/install/build-info.js";
import { type AgentLog, createAgentLog } from "../src/log/index.js";
import {
  AgentMetrics,
  haEventHooks,
  type MetricsServer,
  ownerLeaseRemaining,
  startMetricsServer,
} from "../src/metrics/index.js";

function fail(msg: string): never {
  console.error(`zsha agent: ${msg}`);
  process.exit(2);
}

const { values } = parseArgs({
  options: {
    "node-file": { type: "string" },
    name: { type: "string" },
    "cluster-id": { type: "string", default: "zsha" },
    "peer-listen": { type: "string" },
    "peer-advertise": { type: "string" },
    "client-listen": { type: "string" },
    socket: { type: "string" },
    "data-dir": { type: "string" },
    "initial-cluster": { type: "string" },
    join: { type: "boolean", default: false },
    "tick-ms": { type: "string" },
    "snapshot-entries": { type: "string" },
    "catch-up-entries": { type: "string" },
    "log-level": { type: "string", default: "info" },
    "hypervisor-uri": { type: "string" },
    "seed-dir": { type: "string" },
    "log-dir": { type: "string" },
    "metrics-listen": { type: "string" },
  },
  strict: true,
});

let node: NodeFile;
try {
  if (values["node-file"]) {
    node = readNodeFile(values["node-file"]);
  } else {
    const num = (k: string, v: string | undefined) => {
      if (v === undefined) return undefined;
      const n = Number(v);
      if (!Number.isInteger(n)) fail(`--${k} must be an integer, got '${v}'`);
      return n;
    };
    node = parseNodeFile(
      JSON.parse(
        JSON.stringify({
          name: values.name,
          clusterId: values["cluster-id"],
          peerListen: values["peer-listen"],
          peerAdvertise: values["peer-advertise"],
          clientListen: values["client-listen"],
          clientSocket: values.socket,
          dataDir: values["data-dir"],
          initialCluster: values["initial-cluster"]
            ? parseInitialCluster(values["initial-cluster"])
            : undefined,
          join: values.join || undefined,
          tickMs: num("tick-ms", values["tick-ms"]),
          snapshotEntries: num("snapshot-entries", values["snapshot-entries"]),
          catchUpEntries: num("catch-up-entries", values["catch-up-entries"]),
          logDir: values["log-dir"],
          metricsListen: values["metrics-listen"],
          ha: values["hypervisor-uri"]
            ? { hypervisorUri: values["hypervisor-uri"], seedDir: values["seed-dir"] }
            : undefined,
        }),
      ),
      "flags",
    );
  }
} catch (e) {
  fail((e as Error).message);
}

// Logs go to rotated files (never blocking: a full log disk drops lines): under logDir, or /var/log/z for an
// installed agent (started from a node file); on stderr with "-" or when run from flags (tests, by hand).
const metrics = new AgentMetrics();
const hooks = haEventHooks(metrics, node.name);
let agentLog: AgentLog | undefined;
const logDir = node.logDir ?? (values["node-file"] ? "/var/log/z" : "-");
if (logDir !== "-") {
  agentLog = createAgentLog({ dir: logDir, level: values["log-level"], hooks });
  metrics.attachLog(() => (agentLog as AgentLog).stats());
}
const logger = agentLog?.logger ?? pino({ level: values["log-level"], base: { pid: process.pid }, hooks });
const running = await runMember(memberOptions(node, logger)).catch((e) => fail((e as Error).message));
metrics.attachMember(running.member);
metrics.attachOwnerLease(() => ownerLeaseRemaining(running.member));
let metricsServer: MetricsServer | undefined;
if (node.metricsListen) {
  metricsServer = await startMetricsServer(metrics, node.metricsListen).catch((e) =>
    fail((e as Error).message),
  );
  console.error(`zsha agent ${node.name}: metrics on http://${metricsServer.address}/metrics`);
}
console.error(
  `zsha agent ${node.name}: peer ${running.peerAddress}${running.clientAddress ? `, client ${running.clientAddress}` : ""}`,
);

/** The version this agent reports to the cluster (status shows each node's). */
function agentVersion(): string {
  try {
    return buildInfo().version;
  } catch {
    return "unknown";
  }
}

const ha = node.ha
  ? await runHa(node, running, logger, agentVersion()).catch((e) => fail((e as Error).message))
  : undefined;
if (ha) console.error(`zsha agent ${node.name}: HA on, ${ha.driver}`);

let stopping = false;
const shutdown = (sig: string) => {
  if (stopping) return;
  stopping = true;
  logger.info({ signal: sig }, "agent.stopping");
  void (ha ? ha.stop() : Promise.resolve())
    .then(() => running.stop())
    .then(() => metricsServer?.close())
    .then(() => agentLog?.close())
    .then(() => process.exit(0));
};
process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
running.member.whenStopped().then(
  () => !stopping && process.exit(0),
  (e) => {
    logger.fatal({ err: (e as Error).message }, "agent.member-failed");
    process.exit(1);
  },
);
