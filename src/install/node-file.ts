// The agent's node file (src/agent/node-file.ts) for one node of an installed cluster: its identity and
// addresses from the config, the fixed paths of layout.ts, Raft timing from the config's Timing.
import type { NodeFile } from "../agent/node-file.js";
import type { Config } from "../config/index.js";
import { LAYOUT as L } from "./layout.js";

export function nodeFileFor(
  config: Config,
  clusterId: string,
  node: { name: string; ip: string },
  join: boolean,
): NodeFile {
  const initialCluster = Object.fromEntries(
    config.Node.map((e) => {
      const [ip, name] = e.trim().split(/\s+/) as [string, string];
      return [name, `${ip}:${config.PeerPort}`];
    }),
  );
  return {
    name: node.name,
    clusterId,
    peerListen: `${node.ip}:${config.PeerPort}`,
    clientSocket: L.clientSocket,
    dataDir: L.dataDir,
    initialCluster,
    ...(join ? { join: true } : {}),
    tls: { ca: `${L.tlsDir}/ca.crt`, cert: `${L.tlsDir}/node.crt`, key: `${L.tlsDir}/node.key` },
    tickMs: config.Timing.TickMs,
    logDir: L.logDir,
    metricsListen: L.metricsListen,
    ha: { hypervisorUri: "qemu:///system", seedDir: `${L.dataDir}/seed` },
  };
}
