// `zsha`: the operator's command line. Thin: parse arguments (commander), call the local agent's API over
// its unix socket (or --endpoint), render text or --json. Errors are one sentence on stderr, exit code 1
// (2 for usage errors), and nothing changes in the cluster.
//
// A command loads what it needs when it runs (`await import`), never at start-up: `zsha status` has to
// answer within 300 ms, and loading every command's modules (zod and the config rules, the HA records, the
// gRPC stack for commands that do not talk to the agent) cost it ~100 ms before its first byte was sent.
// Only types and commander are imported here; the agent's API is in ./api.ts.

import { readFileSync, writeFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import type { Api } from "./api.js";
import { addInstallCommands } from "./install.js";
import { addMemberCommands } from "./member.js";

export const DEFAULT_SOCKET = "/run/zsha/zsha.sock";

export interface Io {
  out(line: string): void;
  err(line: string): void;
  /** Rewrites the current terminal line (progress bars); plain output when not a terminal. */
  progress(line: string): void;
}

export const processIo: Io = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  progress: (l) => (process.stdout.isTTY ? process.stdout.write(`\r${l}`) : process.stdout.write(`${l}\n`)),
};

/** A failure already worded for the operator. */
export class CliError extends Error {}

function endpoint(opts: { endpoint?: string }): string {
  return opts.endpoint ?? process.env.ZSHA_ENDPOINT ?? `unix:${process.env.ZSHA_SOCKET ?? DEFAULT_SOCKET}`;
}

const dec = new TextDecoder();

/** A stored value as text (the config is stored as JSON). */
function text(b: Uint8Array): string {
  return dec.decode(b);
}

/** The agent's KV store key of the cluster config (KEYS.config of src/ha/records.ts, loaded with zod). */
async function configKey(): Promise<string> {
  return (await import("../ha/records.js")).KEYS.config;
}

/** A config file's text, or one sentence saying why it cannot be read. */
function readConfigFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new CliError(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

async function version(): Promise<string> {
  // BUILD.json in an installed package; git in a checkout. Never fatal: -v must always answer.
  try {
    const b = (await import("../install/build-info.js")).buildInfo();
    const commit = `${b.commit.slice(0, 12)}${b.dirty ? "+changes" : ""}`;
    return `zsha ${b.version} (built ${b.buildDate}, commit ${commit}, node ${b.node})`;
  } catch (e) {
    return `zsha (version unknown: ${(e as Error).message})`;
  }
}

export async function runCli(argv: string[], io: Io = processIo): Promise<number> {
  const program = new Command("zsha")
    .description("HA for the management VM (MN-VM) of a KVM + Ceph cluster")
    .option("--endpoint <address>", `agent API address (default unix:${DEFAULT_SOCKET}, or $ZSHA_ENDPOINT)`)
    .helpOption("-h, --help", "show every command")
    // Not commander's .version(): that wants the text up front, which in a checkout asks git twice.
    .addOption(new Option("-v, --version", "show version, build date and commit"))
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showSuggestionAfterError(true);

  let code = 0;
  let versionAsked = false;
  program.on("option:version", () => {
    versionAsked = true;
    // Stops parsing here, as commander's own version option does; the text is printed below.
    throw new CommanderError(0, "commander.version", "");
  });
  const withApi = async (f: (c: Api) => Promise<void>) => {
    const ep = endpoint(program.opts());
    const { clients, explain } = await import("./api.js");
    const c = clients(ep);
    try {
      await f(c);
    } catch (e) {
      throw e instanceof CliError ? e : new CliError(explain(e, ep));
    } finally {
      c.close();
    }
  };

  program
    .command("status")
    .description("the cluster at a glance: where the MN-VM runs, start records, members, storage")
    .option("--json", "the same content as JSON (stable shape)")
    .action(async (o: { json?: boolean }) =>
      withApi(async ({ kv, ha }) => {
        const { renderStatus, statusJson } = await import("./status.js");
        const [st, members] = await Promise.all([ha.getStatus({ history: 5 }), kv.memberList()]);
        if (o.json) io.out(JSON.stringify(statusJson(st, members), null, 2));
        else for (const l of renderStatus(st, members)) io.out(l);
      }),
    );

  program
    .command("status-conf")
    .description("status plus the cluster's current config")
    .option("--json", "as JSON")
    .action(async (o: { json?: boolean }) =>
      withApi(async ({ kv, ha }) => {
        const { renderStatus, statusJson } = await import("./status.js");
        const [st, members, cfg] = await Promise.all([
          ha.getStatus({ history: 5 }),
          kv.memberList(),
          kv.getValue(await configKey()),
        ]);
        const config = cfg ? JSON.parse(text(cfg.value)) : null;
        if (o.json) io.out(JSON.stringify({ ...statusJson(st, members), config }, null, 2));
        else {
          for (const l of renderStatus(st, members)) io.out(l);
          io.out(">>>Config");
          io.out(config ? JSON.stringify(config, null, 2) : "(no config stored)");
        }
      }),
    );

  program
    .command("check-config")
    .description("validate a config file: 'config file check pass' or every problem, one per line")
    .argument("<file>", "config file (JSON)")
    .action(async (file: string) => {
      const t = readConfigFile(file);
      const { checkConfigText, formatCheck } = await import("../config/index.js");
      const r = checkConfigText(t);
      io.out(formatCheck(r));
      if (!r.ok) code = 1;
    });

  program
    .command("config-sample")
    .description("write a sample config to /tmp/sample.<Type>.config.json")
    .argument("<type>", "CephConf or FileConf")
    .action(async (type: string) => {
      if (type !== "CephConf" && type !== "FileConf")
        throw new CliError(`config-sample: type must be CephConf or FileConf, not '${type}'`);
      const path = `/tmp/sample.${type}.config.json`;
      const { sampleConfigText } = await import("../config/index.js");
      writeFileSync(path, sampleConfigText(type));
      io.out(path);
    });

  program
    .command("export-config")
    .description("write the cluster's current config to /tmp/current.config.json")
    .option("-o, --output <file>", "write it here instead", "/tmp/current.config.json")
    .action(async (o: { output: string }) =>
      withApi(async ({ kv }) => {
        const cfg = await kv.getValue(await configKey());
        if (!cfg)
          throw new CliError("the cluster has no config stored yet: import one with zsha import-config FILE");
        writeFileSync(o.output, `${JSON.stringify(JSON.parse(text(cfg.value)), null, 2)}\n`);
        io.out(`config exported to ${o.output}`);
      }),
    );

  program
    .command("import-config")
    .description(
      "validate and store a new config for the whole cluster (MN-VM settings apply at its next start)",
    )
    .argument("<file>", "config file (JSON)")
    .action(async (file: string) => {
      const t = readConfigFile(file);
      const { checkConfigText, formatCheck } = await import("../config/index.js");
      const r = checkConfigText(t);
      if (!r.ok) {
        for (const l of formatCheck(r).split("\n")) io.err(l);
        throw new CliError(`import-config: ${file} is not valid; nothing was changed`);
      }
      await withApi(async ({ kv }) => {
        await kv.put(await configKey(), JSON.stringify(r.config));
        io.out(
          "config imported; MN-VM settings apply at its next start (zsha status shows a pending restart)",
        );
      });
    });

  for (const [name, state, say] of [
    ["stop", "stopped", "the MN-VM is being shut down; HA will not start it until zsha start"],
    ["start", "running", "HA is on: the MN-VM is started on the best node"],
  ] as const) {
    program
      .command(name)
      .description(
        name === "stop" ? "shut the MN-VM down cleanly and stop HA action" : "start HA action and the MN-VM",
      )
      .action(async () =>
        withApi(async ({ ha }) => {
          await ha.setDesired({ state, by: `zsha ${name}` });
          io.out(say);
        }),
      );
  }

  program
    .command("migrate")
    .description("live-migrate the running MN-VM to TARGET (IP or hostname of a cluster node)")
    .argument("<target>", "node name or IP")
    .action(async (target: string) =>
      withApi(async ({ ha }) => {
        let announced = false;
        for await (const p of ha.migrate({ target })) {
          if (!announced) {
            io.out(`Migrate from ${p.from} to ${p.to}`);
            announced = true;
          }
          io.progress(`Migration: [${String(p.percent).padStart(3)} %]`);
        }
        io.progress("Migration: [100 %]");
        io.out("");
        io.out("migration done");
      }),
    );

  const maint = program
    .command("maintenance")
    .description("node maintenance, or global maintenance (HA frozen)");
  for (const mode of ["enable", "disable"] as const) {
    maint
      .command(mode)
      .description(
        mode === "enable"
          ? "put NODE in maintenance (the MN-VM is migrated away first)"
          : "take NODE out of maintenance",
      )
      .argument("<node>", "node name or IP")
      .action(async (node: string) =>
        withApi(async ({ ha }) => {
          await ha.setMaintenance({ node, enable: mode === "enable" });
          io.out(
            mode === "enable"
              ? `${node} is entering maintenance (see zsha status)`
              : `${node} left maintenance`,
          );
        }),
      );
  }
  const global = maint.command("global").description("freeze or unfreeze HA cluster-wide");
  for (const mode of ["enable", "disable"] as const) {
    global
      .command(mode)
      .description(mode === "enable" ? "freeze HA: nothing is started, stopped or fenced" : "unfreeze HA")
      .action(async () =>
        withApi(async ({ ha }) => {
          await ha.setGlobalMaintenance({ enable: mode === "enable" });
          io.out(
            mode === "enable"
              ? "global maintenance on: HA is frozen"
              : "global maintenance off: HA acts again",
          );
        }),
      );
  }

  program
    .command("demote")
    .description("hand Raft leadership and the MN-VM away from NODE (default: this node)")
    .argument("[node]", "node name or IP")
    .action(async (node: string | undefined) =>
      withApi(async ({ ha }) => {
        for (const a of (await ha.demote({ node: node ?? "" })).actions) io.out(a);
      }),
    );

  program
    .command("reset-MNVM-password")
    .description("reset the MN-VM root password to the default (needs AllowResetRootPassword)")
    .action(async () =>
      withApi(async ({ ha }) => {
        const r = await ha.resetMnvmPassword({});
        io.out(`the MN-VM root password was reset to the default on ${r.node}`);
      }),
    );

  program
    .command("collect-log")
    .description("one tarball of this node's logs, the cluster status and config, with every secret removed")
    .option(
      "-o, --output <file>",
      "where to write it",
      `/tmp/zsha-logs-${new Date().toISOString().slice(0, 10)}.tar.gz`,
    )
    .option("--log-dir <dir>", "the agent's log folder", "/var/log/z")
    .action(async (o: { output: string; logDir: string }) =>
      withApi(async ({ kv, ha }) => {
        const { collect } = await import("./collect-log.js");
        const { renderStatus, statusJson } = await import("./status.js");
        const [st, members, cfg] = await Promise.all([
          ha.getStatus({ history: 50 }),
          kv.memberList(),
          kv.getValue(await configKey()),
        ]);
        const r = collect({
          logDir: o.logDir,
          output: o.output,
          status: statusJson(st, members),
          statusText: renderStatus(st, members),
          members: statusJson(st, members).members,
          config: cfg ? JSON.parse(text(cfg.value)) : null,
        });
        io.out(`${r.path} (${r.files.length} files, secrets removed)`);
      }),
    );

  addMemberCommands(program, withApi, io);
  addInstallCommands(
    program,
    io,
    (c) => {
      code = c;
    },
    withApi,
  );

  program
    .command("demo")
    .description("a three-node cluster on this machine (loopback, temp folder, FileConf); Ctrl-C stops it")
    .action(async () => {
      const { runDemo } = await import("./demo.js");
      code = await runDemo(io, { socket: process.env.ZSHA_SOCKET ?? DEFAULT_SOCKET });
    });

  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (e) {
    if (versionAsked) {
      io.out(await version());
      return 0;
    }
    if (e instanceof CommanderError) {
      // Help and version exit 0; usage errors (already printed by commander) exit 2.
      return e.exitCode === 0 ? 0 : 2;
    }
    io.err(`zsha: ${(e as Error).message}`);
    return 1;
  }
}
