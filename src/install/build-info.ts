/**
 * BUILD.json: what a package was built from (written by src/install/package.ts, next to the shipped
 * package.json), and the same facts for a program run from a checkout (from git). `zsha -v` and the agent's
 * reported version can read `buildInfo()` instead of asking git, which an installed node does not have.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";

export interface BuildInfo {
  readonly version: string;
  /** `git rev-parse HEAD` of the checkout it was built from, or "unknown" (no git, not a checkout). */
  readonly commit: string;
  /** The checkout had changes not committed (tracked or untracked files) when it was built. */
  readonly dirty: boolean;
  /** ISO 8601, UTC: when the package was built (for a checkout: now). */
  readonly buildDate: string;
  /** The Node runtime shipped with it (process.version of the building node). */
  readonly node: string;
}

export const BUILD_INFO_FILE = "BUILD.json";

/** BUILD.json of an installed package's app folder; throws one sentence naming the file when unreadable. */
export function readBuildInfo(appDir: string): BuildInfo {
  const file = join(appDir, BUILD_INFO_FILE);
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, "utf8"));
  } catch (e) {
    throw new Error(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const o = raw as Partial<Record<keyof BuildInfo, unknown>>;
  for (const k of ["version", "commit", "buildDate"] as const) {
    if (typeof o[k] !== "string" || o[k] === "") throw new Error(`${file}: ${k} must be a non-empty string`);
  }
  return {
    version: o.version as string,
    commit: o.commit as string,
    dirty: o.dirty === true,
    buildDate: o.buildDate as string,
    node: typeof o.node === "string" ? o.node : "unknown",
  };
}

function git(root: string, args: string[]): string | undefined {
  try {
    return execFileSync("git", ["-C", root, ...args], { stdio: ["ignore", "pipe", "ignore"] })
      .toString()
      .trim();
  } catch {
    return undefined; // no git, or not a checkout
  }
}

/** The facts BUILD.json records, for a source checkout at `root` (version from its package.json). */
export function checkoutBuildInfo(root: string, now: Date = new Date()): BuildInfo {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version?: unknown };
  if (typeof pkg.version !== "string") throw new Error(`${join(root, "package.json")}: version is missing`);
  const commit = git(root, ["rev-parse", "HEAD"]);
  const status = commit === undefined ? undefined : git(root, ["status", "--porcelain"]);
  return {
    version: pkg.version,
    commit: commit ?? "unknown",
    dirty: status === undefined ? true : status !== "",
    buildDate: now.toISOString(),
    node: process.version,
  };
}

/** Where the running program lives: a source checkout (run with tsx) or an installed package's prefix. */
export type SelfLocation =
  | { readonly kind: "source"; readonly root: string }
  | { readonly kind: "installed"; readonly prefix: string };

/**
 * Told from this module's own place: `<root>/src/install/` in a checkout; in a package (the layout of
 * package.ts) `<prefix>/app/dist/src/install/` (tsc's output, which the agent runs) or `<prefix>/app/dist/cmd/`
 * (the bundled CLI: its entry and chunks). `here` is for tests only.
 */
export function selfLocation(here: string = import.meta.dirname): SelfLocation {
  const root = dirname(dirname(here));
  if (existsSync(join(root, "tsconfig.build.json")) && existsSync(join(root, "src", "install"))) {
    return { kind: "source", root };
  }
  for (const app of [dirname(root), root]) {
    const prefix = dirname(app);
    if (existsSync(join(app, BUILD_INFO_FILE)) && existsSync(join(prefix, "bin", "node"))) {
      return { kind: "installed", prefix };
    }
  }
  throw new Error(
    `cannot tell where zsha runs from: ${here} is neither <checkout>/src/install nor <prefix>/app/dist/src/install nor <prefix>/app/dist/cmd`,
  );
}

/** The running program's build facts: BUILD.json when installed, git when run from a checkout. */
export function buildInfo(): BuildInfo {
  const self = selfLocation();
  return self.kind === "installed" ? readBuildInfo(join(self.prefix, "app")) : checkoutBuildInfo(self.root);
}
