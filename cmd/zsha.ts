#!/usr/bin/env -S node --import tsx
// zsha: the operator's command line (src/cli); "zsha agent ..." runs the agent itself (cmd/agent.ts).

import { runCli } from "../src/cli/main.js";

if (process.argv[2] === "agent") {
  process.argv.splice(2, 1);
  await import("./agent.js");
} else {
  // `zsha status | head`: the reader went away, which is not a failure of the command (as for any Unix tool).
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw e;
  });
  process.exitCode = await runCli(process.argv.slice(2));
}
