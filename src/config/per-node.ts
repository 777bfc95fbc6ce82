/**
 * The per-node value format of SPEC §2: `"172.20.198.24@ceph-1, 172.20.200.24@ceph-2, …"`.
 *
 * A field in this format gives each node its own value (the MN-VM gets the address of the node it runs on,
 * so it can start on nodes in different subnets). A value without any `@` applies to every node.
 */

import type { NodeName } from "./types.js";

export type PerNodeValue =
  | { readonly kind: "uniform"; readonly value: string }
  | { readonly kind: "per-node"; readonly values: ReadonlyMap<NodeName, string> };

export type PerNodeParse =
  | { readonly ok: true; readonly value: PerNodeValue }
  | { readonly ok: false; readonly problems: readonly string[] };

export function isPerNodeText(text: string): boolean {
  return text.includes("@");
}

/**
 * Parses `text` against the cluster's node names. `checkValue` returns why one value is wrong (or
 * undefined). Every problem is reported: bad values, unknown hosts, repeated hosts and uncovered nodes.
 */
export function parsePerNode(
  text: string,
  nodes: readonly NodeName[],
  checkValue: (value: string) => string | undefined,
): PerNodeParse {
  if (!isPerNodeText(text)) {
    const problem = checkValue(text.trim());
    return problem
      ? { ok: false, problems: [problem] }
      : { ok: true, value: { kind: "uniform", value: text.trim() } };
  }
  const problems: string[] = [];
  const values = new Map<NodeName, string>();
  const known = new Set<string>(nodes);
  for (const rawPart of text.split(",")) {
    const part = rawPart.trim();
    const at = part.indexOf("@");
    if (at < 0 || part.indexOf("@", at + 1) >= 0) {
      problems.push(`"${part}" is not of the form value@host (every entry needs exactly one '@')`);
      continue;
    }
    const value = part.slice(0, at).trim();
    const host = part.slice(at + 1).trim();
    const valueProblem = checkValue(value);
    if (valueProblem) problems.push(`${valueProblem} in "${part}"`);
    if (!known.has(host)) {
      problems.push(`"${host}" in "${part}" is not a node of this cluster (nodes: ${nodes.join(", ")})`);
      continue;
    }
    if (values.has(host as NodeName)) {
      problems.push(`node "${host}" is given more than once`);
      continue;
    }
    values.set(host as NodeName, value);
  }
  const missing = nodes.filter((n) => !values.has(n));
  if (missing.length > 0) {
    problems.push(`every node needs a value; missing: ${missing.join(", ")}`);
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, value: { kind: "per-node", values } };
}

/** The value for one node (the parse guaranteed every node is covered). */
export function valueFor(value: PerNodeValue, node: NodeName): string {
  if (value.kind === "uniform") return value.value;
  const v = value.values.get(node);
  if (v === undefined) throw new Error(`per-node value has no entry for node ${node}`);
  return v;
}
