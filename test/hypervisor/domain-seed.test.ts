// Golden tests of the MN-VM domain XML and cloud-init seed for CephConf, FileConf and per-node configs.
// The expected files live in test/hypervisor/golden/<case>/; UPDATE_GOLDEN=1 rewrites them (review the diff).
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import {
  type Config,
  formatCheck,
  type NodeName,
  parseConfig,
  sampleConfig,
} from "../../src/config/index.js";
import { networkConfig, seedFiles } from "../../src/hypervisor/cloud-init.js";
import {
  buildDomainXml,
  cephSecretUuid,
  domainUuid,
  stableUuid,
  xmlEscape,
} from "../../src/hypervisor/domain-xml.js";

const goldenDir = fileURLToPath(new URL("./golden/", import.meta.url));
const CLUSTER = "c0ffee00-1111-4222-8333-444455556666";
const tmp = mkdtempSync(join(tmpdir(), "zsha-domain-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function valid(c: unknown): Config {
  const r = parseConfig(c);
  if (!r.ok) throw new Error(formatCheck(r));
  return r.config;
}

function cephConfig(): Config {
  const c = structuredClone(sampleConfig("CephConf"));
  // Two NICs: a mgmt one without a gateway and a public one carrying the default route.
  c.Network = [
    { ...c.Network[0]!, Gateway: "", IsDefRoute: false },
    {
      Bridge: "br_pub",
      MacAddress: "52:54:00:5A:00:02",
      Ipaddr: "172.16.0.10",
      Netmask: "255.255.0.0",
      Gateway: "172.16.0.1",
      IsMgmt: false,
      IsDefRoute: true,
    },
  ];
  return valid(c);
}

function fileConfig(): Config {
  const c = structuredClone(sampleConfig("FileConf"));
  c.DomainType = "qemu";
  c.MemorySizeInGB = 8;
  c.CPU = 4;
  return valid(c);
}

function perNodeConfig(): Config {
  const c = structuredClone(sampleConfig("CephConf"));
  c.Network[0] = {
    ...c.Network[0]!,
    Ipaddr: "172.20.198.24@ceph-1, 172.20.200.24@ceph-2, 172.20.210.24@ceph-3",
    Netmask: "255.255.255.0@ceph-1, 255.255.255.0@ceph-2, 255.255.0.0@ceph-3",
    Gateway: "172.20.198.1@ceph-1, 172.20.200.1@ceph-2, 172.20.0.1@ceph-3",
  };
  c.DNS = ["223.5.5.5", "8.8.8.8"];
  return valid(c);
}

const CASES: { name: string; config: () => Config; node: string }[] = [
  { name: "cephconf", config: cephConfig, node: "ceph-1" },
  { name: "fileconf", config: fileConfig, node: "ceph-2" },
  { name: "pernode-ceph-2", config: perNodeConfig, node: "ceph-2" },
  { name: "pernode-ceph-3", config: perNodeConfig, node: "ceph-3" },
];

function golden(caseName: string, file: string, actual: string): void {
  const path = join(goldenDir, caseName, file);
  if (process.env.UPDATE_GOLDEN) {
    mkdirSync(join(goldenDir, caseName), { recursive: true });
    writeFileSync(path, actual);
  }
  expect(actual, `${path} (UPDATE_GOLDEN=1 regenerates it)`).toBe(readFileSync(path, "utf8"));
}

/**
 * libvirt's own checks: its RNG schema (virt-xml-validate), then its domain parser, by defining and
 * starting the domain on the in-process test driver (virsh, from libvirt-clients; no daemon involved).
 */
function validateDomain(xml: string): void {
  const file = join(tmp, "domain.xml");
  writeFileSync(file, xml);
  execFileSync("virt-xml-validate", [file, "domain"], { stdio: "pipe" });
  const out = execFileSync(
    "virsh",
    ["-c", "test:///default", `define ${file}; start zsha-mnvm; domstate zsha-mnvm`],
    {
      encoding: "utf8",
    },
  );
  expect(out).toMatch(/^running$/m);
}

describe("MN-VM domain XML and seed, golden", () => {
  for (const c of CASES) {
    it(`${c.name}: domain XML matches and passes libvirt's schema`, () => {
      const xml = buildDomainXml({
        config: c.config(),
        node: c.node as NodeName,
        clusterId: CLUSTER,
        seedIsoPath: `/var/lib/zsha/seed/zsha-mnvm-cidata.iso`,
      });
      golden(c.name, "domain.xml", xml);
      validateDomain(xml);
    });

    it(`${c.name}: seed files match`, () => {
      const seed = seedFiles(c.config(), c.node as NodeName);
      golden(c.name, "meta-data", seed["meta-data"]);
      golden(c.name, "network-config", seed["network-config"]);
      golden(c.name, "user-data", seed["user-data"]);
    });
  }

  it("the per-node seed differs per node, and so does cloud-init's instance-id", () => {
    const c = perNodeConfig();
    const s2 = seedFiles(c, "ceph-2" as NodeName);
    const s3 = seedFiles(c, "ceph-3" as NodeName);
    expect(s2["network-config"]).toContain('"172.20.200.24/24"');
    expect(s3["network-config"]).toContain('"172.20.210.24/16"');
    expect(s2["meta-data"]).not.toBe(s3["meta-data"]);
    // The same settings give the same instance: a restart does not make cloud-init redo its first boot.
    expect(seedFiles(perNodeConfig(), "ceph-2" as NodeName)).toEqual(s2);
  });

  it("network-config changes when the config's network changes (import-config then restart)", () => {
    const a = fileConfig();
    const b = structuredClone(a);
    b.Network[0]!.Ipaddr = "192.168.255.211";
    expect(seedFiles(a, "ceph-1" as NodeName)["meta-data"]).not.toBe(
      seedFiles(b, "ceph-1" as NodeName)["meta-data"],
    );
  });

  it("network-config is YAML that a YAML 1.1 reader sees as intended (MACs quoted)", () => {
    const text = networkConfig(cephConfig(), "ceph-1" as NodeName);
    // Python's yaml is YAML 1.1 like cloud-init's: 52:54:00:... unquoted would be read as a base-60 number.
    const out = execFileSync(
      "python3",
      ["-c", "import sys,yaml,json; print(json.dumps(yaml.safe_load(sys.stdin)))"],
      { input: text },
    ).toString();
    expect(JSON.parse(out)).toEqual({
      version: 2,
      ethernets: {
        nic0: { match: { macaddress: "52:54:00:5a:00:01" }, dhcp4: false, addresses: ["192.168.255.210/24"] },
        nic1: {
          match: { macaddress: "52:54:00:5a:00:02" },
          dhcp4: false,
          addresses: ["172.16.0.10/16"],
          gateway4: "172.16.0.1",
          nameservers: { addresses: ["223.5.5.5"] },
        },
      },
    });
  });
});

describe("domain XML details", () => {
  it("escapes every configured value (a path with & and ')", () => {
    const c = fileConfig();
    c.ImageFolder = "/mnt/a&b's <x>";
    const xml = buildDomainXml({
      config: c,
      node: "ceph-1" as NodeName,
      clusterId: "x&y",
      seedIsoPath: "/s'1.iso",
    });
    expect(xml).toContain("<source file='/mnt/a&amp;b&apos;s &lt;x&gt;/mnvm.img'/>");
    expect(xml).toContain("<source file='/s&apos;1.iso'/>");
    expect(xml).toContain("<zsha:cluster>x&amp;y</zsha:cluster>");
    validateDomain(xml);
    expect(xmlEscape(`<a b="c">&'`)).toBe("&lt;a b=&quot;c&quot;&gt;&amp;&apos;");
  });

  it("uses qcow2 for a FileConf image named .qcow2", () => {
    const c = fileConfig();
    c.ImageName = "mn.qcow2";
    const xml = buildDomainXml({
      config: c,
      node: "ceph-1" as NodeName,
      clusterId: CLUSTER,
      seedIsoPath: "/s.iso",
    });
    expect(xml).toContain("<driver name='qemu' type='qcow2' cache='none' discard='unmap'/>");
  });

  it("derives stable, distinct, RFC 4122 version-5-shaped UUIDs", () => {
    expect(domainUuid(CLUSTER, "zsha-mnvm")).toBe(domainUuid(CLUSTER, "zsha-mnvm"));
    expect(domainUuid(CLUSTER, "zsha-mnvm")).not.toBe(domainUuid("other", "zsha-mnvm"));
    expect(cephSecretUuid(CLUSTER)).not.toBe(domainUuid(CLUSTER, "zsha-mnvm"));
    expect(stableUuid("a")).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
