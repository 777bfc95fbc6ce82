/**
 * HistoryRecorder on an injected clock, and end to end on the real clock: concurrent async clients of an
 * in-memory store, recorded and checked — a correct store passes, a store that serves reads from a
 * lagging replica is caught.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import {
  checkOperations,
  HistoryRecorder,
  type KvInput,
  type KvOutput,
  kvModel,
  UNKNOWN,
} from "../support/linearizability/index.js";
import { Rng } from "./rng.js";

describe("HistoryRecorder", () => {
  it("stamps call and return times from the injected clock", () => {
    let now = 100;
    const recorder = new HistoryRecorder<KvInput, KvOutput>({ clock: () => now });
    const put = recorder.invoke("c1", { op: "put", key: "x", value: "a" });
    now = 105;
    const get = recorder.invoke("c2", { op: "get", key: "x" });
    now = 107;
    put.ok({ op: "put" });
    now = 110;
    get.ok({ op: "get", value: "a" });
    expect(recorder.history()).toEqual([
      {
        client: "c1",
        input: { op: "put", key: "x", value: "a" },
        callAt: 100,
        output: { op: "put" },
        returnAt: 107,
      },
      {
        client: "c2",
        input: { op: "get", key: "x" },
        callAt: 105,
        output: { op: "get", value: "a" },
        returnAt: 110,
      },
    ]);
  });

  it("records failed and unresolved operations as possibly applied, and drops rejected ones", () => {
    const recorder = new HistoryRecorder<KvInput, KvOutput>({ clock: () => 1 });
    recorder.invoke("c1", { op: "put", key: "x", value: "failed" }).fail();
    recorder.invoke("c2", { op: "put", key: "x", value: "in-flight" });
    recorder.invoke("c3", { op: "put", key: "x", value: "refused" }).rejected();
    expect(recorder.history()).toEqual([
      {
        client: "c1",
        input: { op: "put", key: "x", value: "failed" },
        callAt: 1,
        output: UNKNOWN,
        returnAt: Infinity,
      },
      {
        client: "c2",
        input: { op: "put", key: "x", value: "in-flight" },
        callAt: 1,
        output: UNKNOWN,
        returnAt: Infinity,
      },
    ]);
  });

  it("refuses to resolve an operation twice and a clock that goes backwards", () => {
    let now = 10;
    const recorder = new HistoryRecorder<KvInput, KvOutput>({ clock: () => now });
    const handle = recorder.invoke("c1", { op: "get", key: "x" });
    handle.fail();
    expect(() => handle.ok({ op: "get", value: null })).toThrow(/already resolved \(failed\)/);
    const late = recorder.invoke("c1", { op: "get", key: "x" });
    now = 9;
    expect(() => late.ok({ op: "get", value: null })).toThrow(/clock went backwards/);
  });

  it("record() turns a throw into a failure, or a rejection when told the error proves nothing happened", async () => {
    const recorder = new HistoryRecorder<KvInput, KvOutput>();
    const invalid = new Error("key is empty");
    await expect(
      recorder.record(
        "c1",
        { op: "put", key: "", value: "a" },
        async () => Promise.reject(invalid),
        (e) => e === invalid,
      ),
    ).rejects.toBe(invalid);
    await expect(
      recorder.record("c1", { op: "put", key: "x", value: "a" }, async () =>
        Promise.reject(new Error("deadline exceeded")),
      ),
    ).rejects.toThrow("deadline");
    const output = await recorder.record("c1", { op: "get", key: "x" }, async () => ({
      op: "get" as const,
      value: "a",
    }));
    expect(output).toEqual({ op: "get", value: "a" });
    expect(recorder.history().map((op) => [op.input.key, op.returnAt === Infinity])).toEqual([
      ["x", true],
      ["x", false],
    ]);
  });
});

/**
 * A store with a primary and a replica that copies it after a delay. Writes go to the primary; reads go
 * to the primary, or (broken mode) to the replica. Every call waits a random few milliseconds before and
 * after taking effect, on the real timer, so the clients genuinely overlap.
 */
class ToyStore {
  private readonly primary = new Map<string, string>();
  private readonly replica = new Map<string, string>();

  constructor(
    private readonly rng: Rng,
    private readonly readFromReplica: boolean,
  ) {}

  private async jitter(): Promise<void> {
    await sleep(this.rng.int(3));
  }

  async run(input: KvInput): Promise<KvOutput> {
    await this.jitter();
    const output = this.apply(input);
    await this.jitter();
    return output;
  }

  private apply(input: KvInput): KvOutput {
    switch (input.op) {
      case "get": {
        const from = this.readFromReplica ? this.replica : this.primary;
        return { op: "get", value: from.get(input.key) ?? null };
      }
      case "put":
        this.write(input.key, input.value);
        return { op: "put" };
      case "delete":
        this.write(input.key, null);
        return { op: "delete" };
      case "cas": {
        const current = this.primary.get(input.key) ?? null;
        const holds = "value" in input.expect && current === input.expect.value;
        if (holds) this.write(input.key, input.value);
        return { op: "cas", ok: holds };
      }
    }
  }

  private write(key: string, value: string | null): void {
    if (value === null) this.primary.delete(key);
    else this.primary.set(key, value);
    // The replica catches up 5 ms later: long enough for a read to land in between.
    setTimeout(() => {
      if (value === null) this.replica.delete(key);
      else this.replica.set(key, value);
    }, 5);
  }
}

async function runClients(store: ToyStore, rng: Rng) {
  const recorder = new HistoryRecorder<KvInput, KvOutput>();
  const client = async (name: string) => {
    for (let i = 0; i < 40; i++) {
      const key = rng.pick(["a", "b"]);
      const roll = rng.next();
      const input: KvInput =
        roll < 0.45
          ? { op: "get", key }
          : roll < 0.85
            ? { op: "put", key, value: `${name}-${i}` }
            : { op: "cas", key, expect: { value: null }, value: `${name}-${i}` };
      await recorder.record(name, input, () => store.run(input));
    }
  };
  await Promise.all(["c1", "c2", "c3", "c4"].map(client));
  await sleep(10);
  return recorder.history();
}

describe("recorded concurrent clients, end to end", () => {
  it("a store that reads from its primary checks out", async () => {
    const history = await runClients(new ToyStore(new Rng(1), false), new Rng(2));
    expect(history).toHaveLength(160);
    const { result, info } = checkOperations(kvModel, history, { timeoutMs: 10_000 });
    expect(result, info.explanation).toBe("ok");
  });

  it("a store that reads from a lagging replica is caught", async () => {
    const history = await runClients(new ToyStore(new Rng(1), true), new Rng(2));
    const { result, info } = checkOperations(kvModel, history, { timeoutMs: 10_000 });
    expect(result).toBe("illegal");
    expect(info.explanation).toMatch(/get returned .* but the value is/);
  });
});
