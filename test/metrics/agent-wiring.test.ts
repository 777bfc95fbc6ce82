// The real `zsha agent` process with --log-dir and --metrics-listen: the metrics endpoint answers with the
// member's Raft figures, and after SIGTERM the log folder holds the agent's JSON lines (none on stderr).

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { freePort, until } from "../support/cluster.js";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "../..");
const dir = mkdtempSync(join(tmpdir(), "zsha-agentlog-"));
let proc: ChildProcess | undefined;

afterAll(() => {
  if (proc && proc.exitCode === null) proc.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

describe("agent wiring", () => {
  it("serves metrics and writes its log into --log-dir", async () => {
    const [peer, mport] = [await freePort(), await freePort()];
    const logDir = join(dir, "log");
    let stderr = "";
    proc = spawn(
      process.execPath,
      [
        "--import",
        "tsx",
        join(ROOT, "cmd/agent.ts"),
        "--name=n1",
        `--peer-listen=127.0.0.1:${peer}`,
        `--initial-cluster=n1=127.0.0.1:${peer}`,
        `--data-dir=${join(dir, "data")}`,
        "--tick-ms=20",
        `--log-dir=${logDir}`,
        `--metrics-listen=127.0.0.1:${mport}`,
      ],
      { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] },
    );
    proc.stderr?.on("data", (b) => {
      stderr += String(b);
    });
    const body = await until(
      "the agent leads and serves metrics",
      async () => {
        const text = await fetch(`http://127.0.0.1:${mport}/metrics`).then(
          (r) => r.text(),
          () => undefined,
        );
        return text?.includes('zsha_raft_role{role="leader"} 1') ? text : undefined;
      },
      15_000,
    );
    expect(body).toMatch(/^zsha_raft_term [1-9]/m);
    expect(body).toMatch(/^zsha_log_lines_dropped 0$/m);
    expect(stderr).toContain(`metrics on http://127.0.0.1:${mport}/metrics`);

    const exited = new Promise<number | null>((r) => proc?.once("exit", (code) => r(code)));
    proc.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(readdirSync(logDir)).toContain("agent.log");
    const lines = readFileSync(join(logDir, "agent.log"), "utf8").trim().split("\n");
    const events = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(events).toContain("member.role");
    expect(events).toContain("agent.stopping");
    // stderr keeps only the agent's human lines, not the JSON log.
    expect(stderr).not.toMatch(/"msg":"member\.role"/);
  }, 30_000);
});
