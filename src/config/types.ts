/** Distinct types for the config's names, so a node name is never mixed up with an IP or a bridge name. */

declare const nodeNameBrand: unique symbol;
/** A cluster node's host name as written in `Node` (e.g. `ceph-1`). */
export type NodeName = string & { readonly [nodeNameBrand]: "NodeName" };

declare const ipv4Brand: unique symbol;
/** A checked dotted-quad IPv4 address. */
export type IPv4 = string & { readonly [ipv4Brand]: "IPv4" };

/** One entry of `Node`: `"<ipv4> <hostname>"`. */
export interface ClusterNode {
  readonly ip: IPv4;
  readonly name: NodeName;
}

export type StorageType = "CephConf" | "FileConf";
