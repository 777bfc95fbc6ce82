// The HA on real processes: three agents on loopback (real level, gRPC, Raft), each with its own "host"
// (libvirt's in-process test driver when our binding is built, else the simulated driver; state lives in the
// process, so kill -9 is a host's power loss) and a FileConf image in a shared folder.

import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { until } from "../support/cluster.js";
import { HaCluster, runningOn } from "../support/ha-cluster.js";

let c: HaCluster;

describe("HA on real agent processes (FileConf)", () => {
  beforeAll(async () => {
    c = await HaCluster.start(3);
  }, 60_000);

  afterAll(async () => {
    await c?.stop();
  });

  it("starts the MN-VM on one node, fails over when that node's agent is killed, and the old node does not start it again", async () => {
    const first = await until("the MN-VM running somewhere", () => runningOn(c.kv), 40_000, 200);
    const t0 = performance.now();
    await c.kill(first);
    const others = c.client(c.names.filter((n) => n !== first));
    try {
      const second = await until(
        "the MN-VM running on another node",
        async () => {
          const n = await runningOn(others);
          return n && n !== first ? n : undefined;
        },
        40_000,
        200,
      );
      console.log(
        `failover ${first} -> ${second} (${c.hypervisor}): ${Math.round(performance.now() - t0)} ms`,
      );
      // The old node comes back: it must not start the MN-VM (the owner is elsewhere).
      c.startAgent(first);
      await new Promise((r) => setTimeout(r, 8000));
      expect(await runningOn(c.kv)).toBe(second);
      expect(c.events(first, "ha.started")).toHaveLength(1); // only its first life's start
    } finally {
      others.close();
    }
  }, 120_000);

  it("with two agents down nobody runs it (the cut-off copy stops itself); with a majority back it runs again", async () => {
    const owner = await until("the MN-VM running", () => runningOn(c.kv), 40_000, 200);
    const others = c.names.filter((n) => n !== owner);
    await Promise.all(others.map((n) => c.kill(n)));
    await until(
      "the lone owner to destroy its copy",
      () => c.events(owner, "ha.self-fence").length > 0,
      20_000,
      200,
    );
    for (const n of others) c.startAgent(n);
    const back = await until("the MN-VM running again", () => runningOn(c.kv), 60_000, 300);
    expect(c.names).toContain(back);
  }, 150_000);
});
