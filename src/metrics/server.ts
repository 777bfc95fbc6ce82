// The Prometheus endpoint: GET /metrics over plain HTTP, meant for localhost (default 127.0.0.1:9780).

import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { AgentMetrics } from "./agent-metrics.js";

export const DEFAULT_METRICS_LISTEN = "127.0.0.1:9780";

export interface MetricsServer {
  /** host:port actually bound (port 0 resolved). */
  readonly address: string;
  close(): Promise<void>;
}

/** Parses `host:port` (IPv6 as `[::1]:9780`); throws one sentence naming the flag. */
export function parseListen(listen: string, what = "--metrics-listen"): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[2]) : Number.NaN;
  if (!m || port > 65535)
    throw new Error(`${what} must be host:port (e.g. ${DEFAULT_METRICS_LISTEN}), got '${listen}'`);
  return { host: (m[1] as string).replace(/^\[|\]$/g, ""), port };
}

export async function startMetricsServer(
  metrics: AgentMetrics,
  listen = DEFAULT_METRICS_LISTEN,
): Promise<MetricsServer> {
  const { host, port } = parseListen(listen);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" || path !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("only GET /metrics is served\n");
      return;
    }
    metrics.scrape().then(
      (body) => res.writeHead(200, { "content-type": metrics.contentType }).end(body),
      (e: unknown) => res.writeHead(500, { "content-type": "text/plain" }).end(`${(e as Error).message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(new Error(`cannot serve metrics on ${listen}: ${e.message}`)));
    server.listen(port, host, () => resolve());
  });
  const a = server.address() as AddressInfo;
  return {
    address: `${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
