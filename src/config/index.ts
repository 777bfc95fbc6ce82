/** The config file of SPEC §2: schema, checks, samples, and per-node resolution. */

export {
  CHECK_PASS,
  type CheckOptions,
  type CheckResult,
  checkConfigText,
  formatCheck,
  formatPath,
  type Problem,
  parseConfig,
} from "./check.js";
export { configJsonSchema, type FieldDoc, fieldReference, formatFieldReference } from "./docs.js";
export { netmaskToPrefix } from "./net.js";
export {
  chronySourcesFor,
  clusterNodes,
  findNode,
  mgmtNicIndex,
  type NodeNetwork,
  resolveNic,
  resolvePerNode,
} from "./resolve.js";
export { sampleConfig, sampleConfigText } from "./sample.js";
export type { Config, ConfigInput, Nic, Timing } from "./schema.js";
export type { ClusterNode, IPv4, NodeName, StorageType } from "./types.js";
