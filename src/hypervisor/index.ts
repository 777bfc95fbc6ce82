/**
 * The node's hands on its VMs: the `Hypervisor` interface, the MN-VM's domain XML and cloud-init seed,
 * and the simulated driver. The libvirt driver lives in `libvirt.ts` and is loaded only where libvirt is.
 */

export { networkConfig, SEED_LABEL, type SeedFiles, seedFiles } from "./cloud-init.js";
export {
  buildDomainXml,
  CEPH_SECRET_USAGE,
  CEPH_USER,
  cephSecretUuid,
  type DomainXmlInput,
  domainUuid,
  fileImagePath,
  stableUuid,
  xmlEscape,
} from "./domain-xml.js";
export * from "./hypervisor.js";
export {
  DEFAULT_SEED_DIR,
  type MnvmStartInput,
  type MnvmStartPlan,
  prepareMnvmStart,
  seedIsoPath,
} from "./mnvm.js";
export { SeedIsoError, type WriteSeedOptions, writeSeedIso } from "./seed-iso.js";
export { DEFAULT_SIM_TIMINGS, parseSimDomainXml, SimHypervisor, type SimTimings, SimWorld } from "./sim.js";
export { type CancelTimer, ManualScheduler, realTimeScheduler, type SimScheduler } from "./sim-scheduler.js";
export { type SimDiskClient, SimStorage } from "./sim-storage.js";
