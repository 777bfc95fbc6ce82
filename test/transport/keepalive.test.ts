// A peer that stops answering (SIGSTOP: its sockets stay open, nothing replies) is detected by keepalive,
// reported unreachable, and its stream comes back once it answers again.
import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { nodeId } from "../../src/raft/index.js";
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

describe("keepalive", () => {
  it("notices a frozen peer, keeps the messages queued, and delivers them once it thaws", async () => {
    a = await startMember("a", { keepaliveMs: 300 });
    child = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        new URL("./member-process.ts", import.meta.url).pathname,
        "b",
        "a",
        a.address,
        "300",
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    const lines: Record<string, unknown>[] = [];
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (l) =>
      lines.push(JSON.parse(l)),
    );
    await until("b is listening", () => lines.length > 0, 20_000);
    const address = lines[0]?.address as string;
    const commits = () => lines.filter((l) => l.from === "a").map((l) => l.commit);

    a.transport.addPeer("b", address);
    a.transport.send([numbered("a", "b", 1)]);
    await until("b got the first message", () => commits().length === 1);

    child.kill("SIGSTOP");
    await until("a noticed b stopped answering", () => a?.unreachable.includes(nodeId("b")) === true, 5_000);
    expect(a.transport.stats().get(nodeId("b"))?.connected).toBe(false);
    a.transport.send([10, 11, 12].map((n) => numbered("a", "b", n)));
    expect(a.transport.stats().get(nodeId("b"))?.queued).toBe(3);

    child.kill("SIGCONT");
    await until("b got the queued messages", () => commits().slice(-3).join() === "10,11,12", 10_000);
    expect(commits()).toEqual([1, 10, 11, 12]);
  });
});
