// `zsha install` and `zsha uninstall`: argument parsing only; the work is in src/install, loaded when the
// command runs (see the top of main.ts: only types are imported at start-up).
import type { Command } from "commander";
import type { KvClient } from "../client/kv-client.js";
import type { Config } from "../config/index.js";
import type { HaService } from "../gen/zsha/ha/v1/ha_pb.js";
import type { Client } from "../grpc/index.js";
import type { Io } from "./main.js";

type Api = { kv: KvClient; ha: Client<typeof HaService.method> };

export function addInstallCommands(
  program: Command,
  io: Io,
  setCode: (code: number) => void,
  withApi: (f: (c: Api) => Promise<void>) => Promise<void>,
): void {
  program
    .command("install")
    .description("install or update zsha on every node of CONFIG over SSH (run on one node, as root)")
    .requiredOption(
      "-p, --password <password>",
      "root password of the nodes (used for this run only, never stored)",
    )
    .requiredOption("-c, --config <file>", "the cluster config file (see zsha check-config)")
    .option(
      "--replaced <node...>",
      "nodes replaced by new machines (same name and IP): accept their new SSH host keys",
    )
    .option("--json", "print one machine-readable report at the end")
    .action(async (o: { password: string; config: string; replaced?: string[]; json?: boolean }) => {
      const { runInstall } = await import("../install/install.js");
      setCode(
        await runInstall({
          password: o.password,
          configPath: o.config,
          json: o.json ?? false,
          replaced: o.replaced ?? [],
          out: io.out,
        }),
      );
    });

  program
    .command("uninstall")
    .description("stop the MN-VM and zsha on all nodes and remove zsha (the image stays in Ceph)")
    .option("--yes-i-really-really-mean-it", "confirm: this destroys the MN-VM definition")
    .option("--json", "print one machine-readable report at the end")
    .action(async (o: { yesIReallyReallyMeanIt?: boolean; json?: boolean }) => {
      const { runUninstall, UNINSTALL_WARNING } = await import("../install/uninstall.js");
      if (!o.yesIReallyReallyMeanIt) {
        io.err(UNINSTALL_WARNING);
        setCode(1);
        return;
      }
      // The cluster's config and the clean MN-VM shutdown need the agent; without it, uninstall goes on.
      const withAgent = async <T>(f: (c: Api) => Promise<T>): Promise<T | undefined> => {
        let out: T | undefined;
        await withApi(async (c) => {
          out = await f(c);
        }).catch(() => undefined);
        return out;
      };
      const config: Config | undefined = await withAgent(async ({ kv }) => {
        const { KEYS } = await import("../ha/records.js");
        const v = await kv.getValue(KEYS.config);
        return v ? (JSON.parse(new TextDecoder().decode(v.value)) as Config) : undefined;
      });
      setCode(
        await runUninstall({
          json: o.json ?? false,
          out: io.out,
          config,
          stopMnvm: async () => {
            const said = await withAgent(async ({ ha }) => {
              await ha.setDesired({ state: "stopped", by: "zsha uninstall" });
              const deadline = Date.now() + 90_000;
              for (;;) {
                const st = await ha.getStatus({ history: 0 });
                if (st.mnvmState === "stopped" || st.owner === "") return "the MN-VM was shut down";
                if (Date.now() > deadline)
                  return "the MN-VM did not shut down within 90 s: it is destroyed next";
                await new Promise((r) => setTimeout(r, 1000));
              }
            });
            return said ?? "no agent answered here: the MN-VM is destroyed on each node next";
          },
        }),
      );
    });
}
