// The seed ISO as the guest's cloud-init sees it: volume label cidata and the three files, read back with
// isoinfo (from the genisoimage package) from the image genisoimage really wrote.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type NodeName, sampleConfig } from "../../src/config/index.js";
import { seedFiles } from "../../src/hypervisor/cloud-init.js";
import { prepareMnvmStart } from "../../src/hypervisor/mnvm.js";
import { SeedIsoError, writeSeedIso } from "../../src/hypervisor/seed-iso.js";

const tmp = mkdtempSync(join(tmpdir(), "zsha-seed-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const isoinfo = (...args: string[]) => execFileSync("isoinfo", args, { encoding: "utf8" });

describe("writeSeedIso", () => {
  it("writes an ISO labelled cidata holding meta-data, network-config and user-data", async () => {
    const seed = seedFiles(sampleConfig("CephConf"), "ceph-1" as NodeName);
    const iso = join(tmp, "nested/dir/seed.iso");
    await writeSeedIso(iso, seed);
    expect(isoinfo("-d", "-i", iso)).toMatch(/^Volume id: cidata$/m);
    const listing = isoinfo("-R", "-f", "-i", iso).split("\n").filter(Boolean).sort();
    expect(listing).toEqual(["/meta-data", "/network-config", "/user-data"]);
    for (const name of ["meta-data", "network-config", "user-data"] as const) {
      expect(isoinfo("-R", "-x", `/${name}`, "-i", iso)).toBe(seed[name]);
    }
  });

  it("replaces the seed of an earlier start atomically", async () => {
    const iso = join(tmp, "again.iso");
    const c = sampleConfig("FileConf");
    await writeSeedIso(iso, seedFiles(c, "ceph-1" as NodeName));
    const other = structuredClone(c);
    other.Network[0]!.Ipaddr = "192.168.255.99";
    const seed = seedFiles(other, "ceph-1" as NodeName);
    await writeSeedIso(iso, seed);
    expect(isoinfo("-R", "-x", "/network-config", "-i", iso)).toContain("192.168.255.99/24");
    expect(statSync(iso).size).toBeGreaterThan(0);
  });

  it("says which package is missing when the ISO tool is not installed", async () => {
    const seed = seedFiles(sampleConfig("FileConf"), "ceph-1" as NodeName);
    const err = await writeSeedIso(join(tmp, "x.iso"), seed, { tool: "no-such-genisoimage" }).catch((e) => e);
    expect(err).toBeInstanceOf(SeedIsoError);
    expect(err.message).toMatch(/no-such-genisoimage is not installed \(Debian package genisoimage\)/);
  });
});

describe("prepareMnvmStart", () => {
  it("writes this node's seed and returns a domain XML whose cdrom is that seed", async () => {
    const config = sampleConfig("FileConf");
    const plan = await prepareMnvmStart({
      config,
      node: "ceph-3" as NodeName,
      clusterId: "c1",
      seedDir: tmp,
    });
    expect(plan.seedIsoPath).toBe(join(tmp, "zsha-mnvm-cidata.iso"));
    expect(plan.domainXml).toContain(`<source file='${plan.seedIsoPath}'/>`);
    expect(plan.domainXml).toContain("<zsha:seed-node>ceph-3</zsha:seed-node>");
    expect(isoinfo("-R", "-x", "/network-config", "-i", plan.seedIsoPath)).toBe(plan.seed["network-config"]);
  });
});
