/**
 * Checking a config: `parseConfig` (a JSON value), `checkConfigText` (a file's text) and `formatCheck`
 * (the output of `zsha check-config`: `config file check pass`, or every problem, one per line).
 */

import type { z } from "zod";
import { type CheckOptions, crossFieldProblems, type Problem } from "./rules.js";
import { type Config, ConfigSchema, FIELD_ORDER } from "./schema.js";

export type { CheckOptions, Problem } from "./rules.js";

export type CheckResult =
  | { readonly ok: true; readonly config: Config }
  | { readonly ok: false; readonly problems: readonly Problem[] };

export const CHECK_PASS = "config file check pass";

/** `["Network", 1, "MacAddress"]` → `Network[1].MacAddress`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out;
}

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = input;
  for (const part of path) {
    if (typeof v !== "object" || v === null) return undefined;
    v = (v as Record<PropertyKey, unknown>)[part];
  }
  return v;
}

function describeType(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  return typeof value === "object" ? "an object" : `a ${typeof value}`;
}

const EXPECTED: Record<string, string> = {
  string: "must be a string",
  number: "must be a number",
  boolean: "must be true or false",
  array: "must be a list",
  object: "must be an object",
};

/** Turns zod's issues into our one-sentence problems, one per field (unknown fields one each). */
function issueProblems(input: unknown, issues: readonly z.core.$ZodIssue[]): Problem[] {
  const problems: Problem[] = [];
  for (const issue of issues) {
    const path = issue.path as PropertyKey[];
    if (issue.code === "unrecognized_keys") {
      for (const key of issue.keys) {
        problems.push({
          path: formatPath([...path, key]),
          message: "is not a known field (check its spelling; unknown fields are refused)",
        });
      }
      continue;
    }
    const value = valueAt(input, path);
    if ((issue.code === "invalid_type" || issue.code === "invalid_value") && value === undefined) {
      problems.push({ path: formatPath(path), message: "is required" });
      continue;
    }
    if (issue.code === "invalid_type" && path.length === 0) {
      problems.push({ path: "", message: `the config must be a JSON object, not ${describeType(value)}` });
      continue;
    }
    // Messages we set in the schema are already sentences; zod's own generic ones get ours instead.
    const generic = issue.message.startsWith("Invalid input");
    const message =
      issue.code === "invalid_type" && generic
        ? `${EXPECTED[issue.expected] ?? `must be ${issue.expected}`}, not ${describeType(value)}`
        : issue.message;
    problems.push({ path: formatPath(path), message });
  }
  return problems;
}

/** Validates a parsed JSON value. Every problem is reported, not only the first. */
export function parseConfig(json: unknown, opts: CheckOptions = {}): CheckResult {
  const parsed = ConfigSchema.safeParse(json);
  const problems = parsed.success ? [] : issueProblems(json, parsed.error.issues);
  if (typeof json === "object" && json !== null && !Array.isArray(json)) {
    problems.push(...crossFieldProblems(json as Record<string, unknown>, opts));
  }
  if (problems.length > 0 || !parsed.success) return { ok: false, problems: sortProblems(problems) };
  return { ok: true, config: orderFields(parsed.data) };
}

/** Validates a config file's text, including whether it is JSON at all. */
export function checkConfigText(text: string, opts: CheckOptions = {}): CheckResult {
  // Editors on some systems save a byte-order mark, which JSON.parse refuses.
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return {
      ok: false,
      problems: [{ path: "", message: `the file is not valid JSON: ${why}${where(body, why)}` }],
    };
  }
  return parseConfig(json, opts);
}

/** ` (line L, column C)` for a JSON.parse message that gives a character position. */
function where(text: string, why: string): string {
  const m = /position (\d+)/.exec(why);
  if (!m) return "";
  const before = text.slice(0, Number(m[1]));
  const line = before.split("\n").length;
  const column = before.length - before.lastIndexOf("\n");
  return ` (line ${line}, column ${column})`;
}

/** `config file check pass`, or one line per problem: `Field.Path: what is wrong`. */
export function formatCheck(result: CheckResult): string {
  if (result.ok) return CHECK_PASS;
  return result.problems.map((p) => (p.path === "" ? p.message : `${p.path}: ${p.message}`)).join("\n");
}

/** Problems in the order of the file's fields (then as found), so the output reads top to bottom. */
function sortProblems(problems: Problem[]): Problem[] {
  const rank = (p: Problem) => {
    const top = /^[^.[]*/.exec(p.path)?.[0] ?? "";
    const i = FIELD_ORDER.indexOf(top as keyof Config);
    return p.path === "" ? -1 : i < 0 ? FIELD_ORDER.length : i;
  };
  return problems
    .map((p, i) => ({ p, i }))
    .sort((a, b) => rank(a.p) - rank(b.p) || a.i - b.i)
    .map(({ p }) => p);
}

/** The config with its fields in the documented order (JSON exports then read like the sample). */
export function orderFields(config: Config): Config {
  const out: Record<string, unknown> = {};
  for (const key of FIELD_ORDER) if (config[key] !== undefined) out[key] = config[key];
  return out as Config;
}
