// `zsha demo`: three agents come up, the MN-VM runs, plain `zsha` (default socket) talks to the demo, and
// stopping it stops every agent and removes its data.

import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runDemo } from "../../src/cli/demo.js";
import { type Io, runCli } from "../../src/cli/main.js";
import { until } from "../support/cluster.js";

describe("zsha demo", () => {
  it("starts three agents with the MN-VM running, answers plain zsha on its socket, and stops cleanly", async () => {
    const socket = join(mkdtempSync(join(tmpdir(), "zsha-demo-sock-")), "zsha.sock");
    const out: string[] = [];
    const io: Io = {
      out: (l) => out.push(l),
      err: (l) => out.push(`ERR ${l}`),
      progress: (l) => out.push(l),
    };
    let stop!: () => void;
    const stopped = new Promise<void>((r) => {
      stop = r;
    });
    const demo = runDemo(io, { socket, until: stopped });
    await until("the demo to be up", () => out.some((l) => l.startsWith("Ctrl-C here stops")), 90_000, 200);
    expect(out.join("\n")).toMatch(/demo: hypervisor driver: (libvirt's test driver|simulated)/);
    expect(out.join("\n")).toMatch(/>>>MN-VM Running On\n127\.0\.0\.1\d : running \(n\d, epoch 1\)/);
    // "plain zsha": the socket the CLI uses by default when ZSHA_SOCKET names it.
    const lines: string[] = [];
    process.env.ZSHA_SOCKET = socket;
    try {
      expect(
        await runCli(["status", "--json"], {
          out: (l) => lines.push(l),
          err: (l) => lines.push(l),
          progress: () => {},
        }),
      ).toBe(0);
    } finally {
      delete process.env.ZSHA_SOCKET;
    }
    expect(JSON.parse(lines.join("\n")).mnvm.state).toBe("running");
    stop();
    expect(await demo).toBe(0);
    expect(existsSync(socket)).toBe(false);
    expect(out.at(-1)).toBe("demo: stopping");
  }, 150_000);
});
