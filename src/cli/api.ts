// The local agent's API as the CLI uses it: a KV client and an HA client on the same endpoint, and failed
// calls worded for the operator. Loaded by main.ts only for the commands that talk to the agent.

import * as grpc from "@grpc/grpc-js";
import { KvClient } from "../client/kv-client.js";
import { HaService } from "../gen/zsha/ha/v1/ha_pb.js";
import { type Client, createClient, RpcError } from "../grpc/index.js";

export interface Api {
  readonly kv: KvClient;
  readonly ha: Client<typeof HaService.method>;
  close(): void;
}

export function clients(ep: string): Api {
  const kv = new KvClient({ endpoints: [ep], deadlineMs: 10_000 });
  const ha = createClient(HaService, ep, grpc.credentials.createInsecure());
  return {
    kv,
    ha,
    close() {
      kv.close();
      ha.close();
    },
  };
}

/** A failed call as one sentence saying what is wrong and what to do. */
export function explain(e: unknown, ep: string): string {
  if (e instanceof RpcError) {
    if (e.code === grpc.status.UNAVAILABLE && /connect|No connection|ECONNREFUSED|ENOENT/i.test(e.message)) {
      return `no zsha agent answers at ${ep}: is the agent running on this node (systemctl status zsha)?`;
    }
    return e.message;
  }
  return (e as Error).message;
}
