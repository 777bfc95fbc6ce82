/**
 * The config's documentation, from the same schema as validation and samples: a JSON Schema (for editors
 * and tooling) and a field reference (for `zsha config-sample --help`-style output and docs).
 */

import { z } from "zod";
import { ConfigSchema } from "./schema.js";

/** JSON Schema (draft 2020-12) of a config file as written: fields with defaults are optional. */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ConfigSchema, { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
}

export interface FieldDoc {
  /** e.g. `Network[].MacAddress`, `Timing.TickMs`. */
  readonly path: string;
  /** Required in every file (type-specific requirements are in the description). */
  readonly required: boolean;
  readonly default?: unknown;
  readonly description: string;
}

interface JsonSchemaNode {
  type?: string;
  description?: string;
  default?: unknown;
  properties?: Record<string, JsonSchemaNode>;
  required?: string[];
  items?: JsonSchemaNode;
}

/** Every field, nested ones included, in file order. */
export function fieldReference(): FieldDoc[] {
  const out: FieldDoc[] = [];
  const walk = (node: JsonSchemaNode, prefix: string) => {
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const path = `${prefix}${key}`;
      out.push({
        path,
        required: node.required?.includes(key) ?? false,
        ...(child.default === undefined ? {} : { default: child.default }),
        description: child.description ?? "",
      });
      if (child.properties) walk(child, `${path}.`);
      if (child.items?.properties) walk(child.items, `${path}[].`);
    }
  };
  walk(configJsonSchema() as JsonSchemaNode, "");
  return out;
}

/** The reference as aligned text, one field per line. */
export function formatFieldReference(): string {
  const docs = fieldReference();
  const width = Math.max(...docs.map((d) => d.path.length));
  return docs
    .map((d) => {
      const req = d.required
        ? "required"
        : d.default === undefined
          ? "optional"
          : `default ${JSON.stringify(d.default)}`;
      return `${d.path.padEnd(width)}  ${d.description} (${req})`;
    })
    .join("\n");
}
