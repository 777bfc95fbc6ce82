// A peer that stops answering (SIGSTOP: its sockets stay open, nothing replies) is detected by keepalive,
// reported unreachable, and its stream comes back once it answers again.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { index, MessageType, message, nodeId, term } from "../../src/raft/index.js";
import { type Member, numbered, startMember, until } from "./harness.js";

let child: ChildProcess | undefined;
let a: Member | undefined;
afterEach(async () => {
  if (child && child.exitCode === null) {
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  }
  child = undefined;
  await a?.stop();
  a = undefined;
});

async function startFrozenPeer(keepaliveMs: number) {
  a = await startMember("a", { keepaliveMs });
  child = spawn(
    process.execPath,
    [
      "--import",
      "tsx",
      new URL("./member-process.ts", import.meta.url).pathname,
      "b",
      "a",
      a.address,
      String(keepaliveMs),
    ],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const lines: Record<string, unknown>[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) =>
    lines.push(JSON.parse(l)),
  );
  await until("b is listening", () => lines.length > 0, 20_000);
  return { a, child, lines, address: lines[0]?.address as string };
}

describe("a peer that stops answering (keepalive)", () => {
  it("reports a snapshot failed when its stream dies under it", async () => {
    const { a, child, lines, address } = await startFrozenPeer(300);
    a.transport.addPeer("b", address);
    a.transport.send([numbered("a", "b", 1)]);
    await until("b got the first message", () => lines.length === 2);
    child.kill("SIGSTOP");
    // 32 MiB cannot fit in the connection's buffers: the send is still under way when keepalive gives up.
    const data = new Uint8Array(32 * 1024 * 1024);
    a.transport.send([
      message({
        type: MessageType.Snap,
        from: a.id,
        to: nodeId("b"),
        snapshot: { meta: { index: index(9), term: term(1), confState: { voters: [], learners: [] } }, data },
      }),
    ]);
    await until("a heard the snapshot failed", () => a.snapshotStatus.length === 1, 5_000);
    expect(a.snapshotStatus).toEqual([{ peer: nodeId("b"), ok: false }]);
  });

  it("notices a frozen peer, keeps the messages queued, and delivers them once it thaws", async () => {
    const { a, child, lines, address } = await startFrozenPeer(300);
    const commits = () => lines.filter((l) => l.from === "a").map((l) => l.commit);

    a.transport.addPeer("b", address);
    a.transport.send([numbered("a", "b", 1)]);
    await until("b got the first message", () => commits().length === 1);

    child.kill("SIGSTOP");
    await until("a noticed b stopped answering", () => a.unreachable.includes(nodeId("b")), 5_000);
    expect(a.transport.stats().get(nodeId("b"))?.connected).toBe(false);
    a.transport.send([10, 11, 12].map((n) => numbered("a", "b", n)));
    expect(a.transport.stats().get(nodeId("b"))?.queued).toBe(3);

    child.kill("SIGCONT");
    await until("b got the queued messages", () => commits().slice(-3).join() === "10,11,12", 10_000);
    expect(commits()).toEqual([1, 10, 11, 12]);
  });
});
