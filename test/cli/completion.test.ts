// deploy/zsha.bash-completion completes every command of `zsha -h` and their options, in a real bash.

import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const FILE = join(import.meta.dirname, "..", "..", "deploy", "zsha.bash-completion");

function complete(line: string): string[] {
  const words = line.split(" ");
  const script = `source ${FILE}; COMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _zsha; printf '%s\\n' "\${COMPREPLY[@]}"`;
  return execFileSync("bash", ["-c", script]).toString().split("\n").filter(Boolean);
}

describe("bash completion", () => {
  it("offers every command", () => {
    const all = complete("zsha ");
    for (const c of [
      "status",
      "status-conf",
      "check-config",
      "config-sample",
      "export-config",
      "import-config",
      "stop",
      "start",
      "migrate",
      "maintenance",
      "demote",
      "reset-MNVM-password",
      "collect-log",
      "demo",
    ]) {
      expect(all).toContain(c);
    }
    expect(complete("zsha mig")).toEqual(["migrate"]);
  });

  it("offers each command's arguments and options", () => {
    expect(complete("zsha config-sample ")).toEqual(["CephConf", "FileConf"]);
    expect(complete("zsha status --")).toEqual(["--json"]);
    expect(complete("zsha maintenance ")).toEqual(["enable", "disable", "global"]);
    expect(complete("zsha maintenance global ")).toEqual(["enable", "disable"]);
    expect(complete("zsha --endpoint unix:/x collect-log --")).toEqual(["--output", "--log-dir"]);
  });
});
