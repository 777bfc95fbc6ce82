/**
 * What happens on a node just before it (re)defines and starts the MN-VM: write this node's cloud-init
 * seed, then build the domain XML pointing at it. Done at every start, so the guest always gets the
 * network of the node it runs on and the current config.
 */

import { join } from "node:path";
import type { Config, NodeName } from "../config/index.js";
import { type SeedFiles, seedFiles } from "./cloud-init.js";
import { buildDomainXml } from "./domain-xml.js";
import { writeSeedIso } from "./seed-iso.js";

export const DEFAULT_SEED_DIR = "/var/lib/zsha/seed";

export interface MnvmStartInput {
  readonly config: Config;
  readonly node: NodeName;
  readonly clusterId: string;
  /** Local folder for the seed ISO (not the shared ImageFolder: each node writes its own). */
  readonly seedDir?: string;
}

export interface MnvmStartPlan {
  readonly domainXml: string;
  readonly seedIsoPath: string;
  readonly seed: SeedFiles;
}

/** The seed ISO path for a domain on this node. */
export function seedIsoPath(config: Config, seedDir = DEFAULT_SEED_DIR): string {
  return join(seedDir, `${config.DomainName}-cidata.iso`);
}

/**
 * Writes the seed ISO and returns the domain XML to define before `start`. `writeIso` is injectable so
 * the simulator can skip the file system.
 */
export async function prepareMnvmStart(
  input: MnvmStartInput,
  writeIso: (path: string, files: SeedFiles) => Promise<void> = writeSeedIso,
): Promise<MnvmStartPlan> {
  const path = seedIsoPath(input.config, input.seedDir);
  const seed = seedFiles(input.config, input.node);
  await writeIso(path, seed);
  const domainXml = buildDomainXml({
    config: input.config,
    node: input.node,
    clusterId: input.clusterId,
    seedIsoPath: path,
  });
  return { domainXml, seedIsoPath: path, seed };
}
