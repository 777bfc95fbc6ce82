import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  type Config,
  checkConfigText,
  chronySourcesFor,
  fieldReference,
  findNode,
  formatCheck,
  formatFieldReference,
  type NodeName,
  parseConfig,
  resolvePerNode,
  sampleConfig,
  sampleConfigText,
} from "../../src/config/index.js";

const samplesDir = fileURLToPath(new URL("../../deploy/samples/", import.meta.url));

describe("samples", () => {
  // The files in deploy/samples are generated from the schema; UPDATE_SAMPLES=1 rewrites them (then run
  // biome on them: the repository's formatter lays JSON out its own way, so content is compared, not text).
  for (const type of ["CephConf", "FileConf"] as const) {
    it(`deploy/samples/${type}.config.json is the generated sample and passes the check`, () => {
      const path = `${samplesDir}${type}.config.json`;
      if (process.env.UPDATE_SAMPLES) writeFileSync(path, sampleConfigText(type));
      const text = readFileSync(path, "utf8");
      expect(JSON.parse(text)).toEqual(sampleConfig(type));
      expect(Object.keys(JSON.parse(text))).toEqual(Object.keys(sampleConfig(type)));
      expect(formatCheck(checkConfigText(text))).toBe("config file check pass");
      expect(JSON.parse(text).Type).toBe(type);
    });
  }

  it("a checked config round-trips: export then import gives the same config", () => {
    const config = sampleConfig("CephConf");
    const again = parseConfig(JSON.parse(JSON.stringify(config)));
    expect(again).toEqual({ ok: true, config });
  });
});

function perNodeConfig(): Config {
  const c = structuredClone(sampleConfig("CephConf"));
  c.Network[0] = {
    ...c.Network[0]!,
    Ipaddr: "172.20.198.24@ceph-1, 172.20.200.24@ceph-2, 172.20.210.24@ceph-3",
    Netmask: "255.255.255.0@ceph-1, 255.255.255.0@ceph-2, 255.255.0.0@ceph-3",
    Gateway: "172.20.198.1@ceph-1, 172.20.200.1@ceph-2, 172.20.0.1@ceph-3",
  };
  c.ConsoleProxyOverriddenIP = "10.0.0.1@ceph-1, 10.0.0.2@ceph-2, @ceph-3";
  const r = parseConfig(c);
  if (!r.ok) throw new Error(formatCheck(r));
  return r.config;
}

describe("resolvePerNode", () => {
  it("gives the mgmt NIC's address of the node the MN-VM runs on", () => {
    const c = perNodeConfig();
    expect(resolvePerNode(c, "ceph-2" as NodeName)).toEqual({
      node: "ceph-2",
      Ipaddr: "172.20.200.24",
      Netmask: "255.255.255.0",
      prefixLength: 24,
      Gateway: "172.20.200.1",
      ConsoleProxyOverriddenIP: "10.0.0.2",
    });
    // An empty per-node value means "not overridden" on that node.
    expect(resolvePerNode(c, "ceph-3" as NodeName)).toEqual({
      node: "ceph-3",
      Ipaddr: "172.20.210.24",
      Netmask: "255.255.0.0",
      prefixLength: 16,
      Gateway: "172.20.0.1",
    });
  });

  it("gives the same plain values on every node when none is per-node", () => {
    const c = sampleConfig("FileConf");
    for (const node of ["ceph-1", "ceph-3"] as NodeName[]) {
      expect(resolvePerNode(c, node)).toEqual({
        node,
        Ipaddr: "192.168.255.210",
        Netmask: "255.255.255.0",
        prefixLength: 24,
        Gateway: "192.168.255.1",
      });
    }
  });

  it("refuses a node that is not in the cluster", () => {
    expect(() => resolvePerNode(sampleConfig("CephConf"), "ceph-9" as NodeName)).toThrow(
      /not in this cluster/,
    );
  });
});

describe("chronySourcesFor and findNode", () => {
  it("never tells a node to sync from itself", () => {
    const c = structuredClone(sampleConfig("CephConf"));
    c.ChronyServers = ["192.168.255.205", "ceph-2", "ntp.example.com"];
    expect(chronySourcesFor(c, "ceph-1" as NodeName)).toEqual(["ceph-2", "ntp.example.com"]);
    expect(chronySourcesFor(c, "ceph-2" as NodeName)).toEqual(["192.168.255.205", "ntp.example.com"]);
    expect(chronySourcesFor(c, "ceph-3" as NodeName)).toEqual(c.ChronyServers);
  });

  it("finds nodes by IP or host name", () => {
    const c = sampleConfig("CephConf");
    expect(findNode(c, "CEPH-2")).toEqual({ ip: "192.168.255.206", name: "ceph-2" });
    expect(findNode(c, "192.168.255.207")?.name).toBe("ceph-3");
    expect(findNode(c, "ceph-4")).toBeUndefined();
  });
});

describe("checkConfigText", () => {
  it("says where a file stops being JSON (a trailing comma, a missing comma)", () => {
    // The sentence is V8's; the line and column are ours.
    expect(formatCheck(checkConfigText('{\n  "CPU": 4,\n}\n'))).toMatch(
      /^the file is not valid JSON: .* \(line 3, column 1\)$/,
    );
    expect(formatCheck(checkConfigText('{\n  "CPU": 4\n  "Type": "CephConf"\n}'))).toMatch(
      /\(line 3, column 3\)$/,
    );
    expect(formatCheck(checkConfigText(""))).toMatch(/^the file is not valid JSON: /);
  });

  it("accepts a file saved with a byte-order mark", () => {
    expect(formatCheck(checkConfigText(`\uFEFF${sampleConfigText("CephConf")}`))).toBe(
      "config file check pass",
    );
  });
});

describe("field reference (docs from the schema)", () => {
  it("documents every field, with required flags and defaults", () => {
    const docs = fieldReference();
    const paths = docs.map((d) => d.path);
    for (const key of Object.keys(sampleConfig("CephConf"))) expect(paths).toContain(key);
    for (const key of Object.keys(sampleConfig("CephConf").Network[0]!))
      expect(paths).toContain(`Network[].${key}`);
    for (const d of docs) expect(d.description, d.path).not.toBe("");
    const byPath = new Map(docs.map((d) => [d.path, d]));
    expect(byPath.get("Node")?.required).toBe(true);
    expect(byPath.get("PoolName")?.required).toBe(false);
    expect(byPath.get("ImageName")?.default).toBe("mnvm.img");
    expect(byPath.get("Timing.OwnerLeaseMs")?.default).toBe(5000);
    expect(formatFieldReference().split("\n")).toHaveLength(docs.length);
  });
});
