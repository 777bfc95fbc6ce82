/**
 * `zsha config-sample CephConf|FileConf`: a valid example config. The example values for the required
 * fields are here; everything else (defaults, field order) comes from the schema, and the result is
 * checked by the same `parseConfig` as an operator's file, so a sample can never drift from the schema.
 */

import { parseConfig } from "./check.js";
import type { Config, ConfigInput } from "./schema.js";
import type { StorageType } from "./types.js";

const COMMON = {
  Node: ["192.168.255.205 ceph-1", "192.168.255.206 ceph-2", "192.168.255.207 ceph-3"],
  MemorySizeInGB: 16,
  CPU: 8,
  ChronyServers: ["192.168.255.205"],
  DNS: ["223.5.5.5"],
  Network: [
    {
      Bridge: "br_eth0",
      MacAddress: "52:54:00:5a:00:01",
      Ipaddr: "192.168.255.210",
      Netmask: "255.255.255.0",
      Gateway: "192.168.255.1",
      IsMgmt: true,
      IsDefRoute: true,
    },
  ],
  ConsoleProxyOverriddenIP: "",
} satisfies Partial<ConfigInput>;

const EXAMPLES: Record<StorageType, ConfigInput> = {
  CephConf: {
    ...COMMON,
    Type: "CephConf",
    MonAddrs: ["192.168.255.205:6789", "192.168.255.206:6789", "192.168.255.207:6789"],
    PoolName: "zstack",
    ImageFolder: "/var/lib/zsha",
  },
  FileConf: {
    ...COMMON,
    Type: "FileConf",
    ImageFolder: "/mnt/zsha-shared",
  },
};

export function sampleConfig(type: StorageType): Config {
  const result = parseConfig(structuredClone(EXAMPLES[type]));
  if (!result.ok) {
    throw new Error(
      `the built-in ${type} sample is invalid: ${result.problems.map((p) => p.message).join("; ")}`,
    );
  }
  return result.config;
}

/** The sample as the file `config-sample` writes: pretty JSON with a final newline. */
export function sampleConfigText(type: StorageType): string {
  return `${JSON.stringify(sampleConfig(type), null, 2)}\n`;
}
