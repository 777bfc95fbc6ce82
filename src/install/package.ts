/**
 * The package `zsha install` copies to every node: the program, its production dependencies and the Node
 * runtime that runs it, so a node needs nothing beyond the OS packages libvirt and Ceph already require.
 *
 * A gzip tarball rooted at ".": its members are ./bin/… and ./app/…, so `tar -xzf T -C PREFIX` unpacks it
 * (PREFIX is /opt/zsha on a node; it has no "./" member, so PREFIX keeps its own mode). Layout:
 *
 *   bin/node                   a copy of the building node's runtime (process.execPath)
 *   bin/zsha                   POSIX sh wrapper: runs app/dist/cmd/zsha.js with bin/node, from any prefix
 *   app/package.json           name, version, "type": "module"
 *   app/BUILD.json             version, commit, dirty, buildDate, node (src/install/build-info.ts)
 *   app/dist/{src,cmd}/…       tsc output of tsconfig.build.json (src, cmd/agent.ts), which the agent runs
 *   app/dist/cmd/zsha.js       the CLI bundled by esbuild, with its chunks app/dist/cmd/zsha-*.js (bundleCli)
 *   app/node_modules/…         the production dependency closure, real directories, same nesting as the
 *                              checkout's; @zsha/libvirt as package.json + dist/*.js + build/Release/*.node
 *   app/deploy/…               the checkout's deploy/ (systemd unit, bash completion, sample configs)
 *
 * Built from a checkout (tsc is a devDependency there), or re-packed from an installed prefix, so that
 * `zsha install` run on a node that was itself installed can still copy the program to the others.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import {
  chmod,
  copyFile,
  cp,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  realpath,
  rename,
  rm,
  stat,
  writeFile,
} from "node:fs/promises";
import { createRequire } from "node:module";
import { basename, dirname, join, relative, sep } from "node:path";
import { execa } from "execa";
import {
  BUILD_INFO_FILE,
  type BuildInfo,
  checkoutBuildInfo,
  readBuildInfo,
  type SelfLocation,
  selfLocation,
} from "./build-info.js";

export { type SelfLocation, selfLocation };

export interface PackageInfo {
  readonly tarball: string;
  readonly bytes: number;
  readonly sha256: string;
  readonly version: string;
  readonly commit: string;
}

/** Paths inside an unpacked package (relative to its prefix), for the installer. */
export const PACKAGE_LAYOUT = {
  node: "bin/node",
  wrapper: "bin/zsha",
  app: "app",
  entry: "app/dist/cmd/zsha.js",
  buildInfo: `app/${BUILD_INFO_FILE}`,
  deploy: "app/deploy",
} as const;

/** The tarball's members: these two folders, relative to the prefix (see the top of this file). */
const MEMBERS = ["./bin", "./app"];

/**
 * Dependencies used only while npm installs (addon headers, cpu-features' build probe) or only by the
 * type checker (@types/*); nothing requires them at run time.
 */
const BUILD_ONLY = new Set(["node-addon-api", "nan", "buildcheck"]);
const isBuildOnly = (name: string) => BUILD_ONLY.has(name) || name.startsWith("@types/");

type Log = (line: string) => void;

/**
 * Builds (from a checkout) or re-packs (from an installed prefix) the package into `outDir`. From a clean
 * checkout, or from an installed prefix, the result is cached in `outDir` under a name that encodes what
 * it was built from (commit, Node runtime, platform, whether the libvirt addon was there); a later call
 * finds the tarball and its `.json` sidecar, checks the sha256 and returns it without building.
 */
export async function packageSelf(opts: { outDir: string; log?: Log }): Promise<PackageInfo> {
  const log = opts.log ?? (() => {});
  await mkdir(opts.outDir, { recursive: true });
  await removeLeftovers(opts.outDir);
  const self = selfLocation();
  return self.kind === "source"
    ? packageCheckout(self.root, opts.outDir, log)
    : repackInstalled(self.prefix, opts.outDir, log);
}

/** A build older than this is not running any more: its staging folder or half-written tarball is litter. */
const LEFTOVER_AGE_MS = 60 * 60_000;

/**
 * Staging folders and temporary tarballs of builds that were killed (each ~130 MB: the runtime alone is
 * 100 MB). Only old ones: another build may be writing into the same folder right now.
 */
async function removeLeftovers(outDir: string): Promise<void> {
  for (const name of await readdir(outDir)) {
    if (!name.startsWith(".stage-") && !/^\.zsha-.*\.tar\.gz\.\d+$/.test(name)) continue;
    const p = join(outDir, name);
    const st = await stat(p).catch(() => undefined);
    if (st && Date.now() - st.mtimeMs > LEFTOVER_AGE_MS) await rm(p, { recursive: true, force: true });
  }
}

async function packageCheckout(root: string, outDir: string, log: Log): Promise<PackageInfo> {
  const info = checkoutBuildInfo(root);
  const libvirtAddon = await libvirtAddonPresent(root);
  const key = cacheKey({ commit: info.commit, node: process.version, libvirtAddon });
  const name = `zsha-${info.version}-${info.commit.slice(0, 12)}-${info.dirty ? "dirty" : key}.tar.gz`;
  const tarball = join(outDir, name);
  if (!info.dirty) {
    const cached = await cachedPackage(tarball);
    if (cached) {
      log(`package: reusing ${tarball} (built from the same commit, clean tree)`);
      return cached;
    }
  } else {
    log(`package: the checkout has uncommitted changes; building without the cache`);
  }

  const stage = await mkdtemp(join(outDir, ".stage-"));
  try {
    const top = join(stage, "zsha");
    const app = join(top, "app");
    const compiled = join(stage, "tsc");
    let t = Date.now();
    await compile(root, compiled);
    log(`package: compiled src and cmd with tsc (${Date.now() - t} ms)`);
    t = Date.now();
    const files = await bundleCli(root, compiled);
    log(`package: bundled the CLI with esbuild into ${files} files (${Date.now() - t} ms)`);
    await mkdir(join(app, "dist"), { recursive: true });
    await rename(join(compiled, "src"), join(app, "dist", "src"));
    await rename(join(compiled, "cmd"), join(app, "dist", "cmd"));

    t = Date.now();
    const deps = await productionClosure(root, log);
    for (const d of deps) await copyDependency(root, d, app, compiled, log);
    log(`package: copied ${deps.length} production dependencies (${Date.now() - t} ms)`);

    await cp(join(root, "deploy"), join(app, "deploy"), { recursive: true, dereference: true });
    const appPkg = `${JSON.stringify(await shippedPackageJson(root), null, 2)}\n`;
    await writeFile(join(app, "package.json"), appPkg);
    await writeFile(join(app, BUILD_INFO_FILE), `${JSON.stringify(info, null, 2)}\n`);
    await writeRuntime(top);

    t = Date.now();
    await tarTree(top, tarball);
    log(`package: wrote ${tarball} (${Date.now() - t} ms)`);
    return await describe(tarball, info);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

async function repackInstalled(prefix: string, outDir: string, log: Log): Promise<PackageInfo> {
  const app = join(prefix, "app");
  const info = readBuildInfo(app);
  const key = cacheKey({ buildInfo: await readFile(join(app, BUILD_INFO_FILE), "utf8") });
  const tarball = join(outDir, `zsha-${info.version}-${info.commit.slice(0, 12)}-${key}.tar.gz`);
  const cached = await cachedPackage(tarball);
  if (cached) {
    log(`package: reusing ${tarball} (re-packed earlier from this installation)`);
    return cached;
  }
  for (const p of [PACKAGE_LAYOUT.node, PACKAGE_LAYOUT.wrapper, PACKAGE_LAYOUT.entry]) {
    if (!existsSync(join(prefix, p)))
      throw new Error(`installed package at ${prefix} is incomplete: no ${p}`);
  }
  // Only bin/ and app/ are the package; anything else under the prefix belongs to the node.
  await tarTree(prefix, tarball);
  log(`package: re-packed ${prefix} into ${tarball}`);
  return describe(tarball, info);
}

function cacheKey(what: Record<string, unknown>): string {
  const all = { ...what, platform: process.platform, arch: process.arch };
  return createHash("sha256").update(JSON.stringify(all)).digest("hex").slice(0, 10);
}

async function cachedPackage(tarball: string): Promise<PackageInfo | undefined> {
  let side: PackageInfo;
  try {
    side = JSON.parse(await readFile(`${tarball}.json`, "utf8")) as PackageInfo;
  } catch {
    return undefined;
  }
  if (!existsSync(tarball) || (await sha256File(tarball)) !== side.sha256) return undefined;
  return { ...side, tarball };
}

/** Hashes the written tarball and records the sidecar that makes it reusable. */
async function describe(tarball: string, info: BuildInfo): Promise<PackageInfo> {
  const out: PackageInfo = {
    tarball,
    bytes: (await stat(tarball)).size,
    sha256: await sha256File(tarball),
    version: info.version,
    commit: info.commit,
  };
  const tmp = `${tarball}.json.${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(out, null, 2)}\n`);
  await rename(tmp, `${tarball}.json`);
  return out;
}

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** tsc -p tsconfig.build.json into `outDir` (a type error fails the package, with tsc's own report). */
async function compile(root: string, outDir: string): Promise<void> {
  let tsc: string;
  try {
    tsc = createRequire(join(root, "package.json")).resolve("typescript/bin/tsc");
  } catch {
    throw new Error(`cannot build the package: typescript is not installed in ${root} (run npm ci)`);
  }
  const r = await execa(process.execPath, [tsc, "-p", "tsconfig.build.json", "--outDir", outDir], {
    cwd: root,
    reject: false,
    all: true,
  });
  if (r.exitCode !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${r.all ?? ""}`.trimEnd());
}

/** The import of the agent in cmd/zsha.ts: tsc's cmd/agent.js next to the bundle, not bundled. */
const AGENT_IMPORT = "./agent.js";

/**
 * Replaces tsc's cmd/zsha.js in `compiled` by the CLI bundled with esbuild: an entry and one chunk per lazily
 * loaded part (each command's `await import` is a split point), so `zsha status` reads a handful of files
 * instead of finding and reading some 300 modules of ours, grpc-js, protobuf-es and zod: that cost a fresh
 * process ~100 ms, a third of the 300 ms `zsha status` may take. Bundled from tsc's output, so the CLI
 * runs the very JS the type checker passed. Left out of the bundle: ssh2 (a native addon, loaded from
 * node_modules by `zsha install` as before) and the agent (`zsha agent` imports tsc's cmd/agent.js, next
 * to the bundle). No source map: with `--enable-source-maps` (bin/zsha) node reads and parses every map
 * of what it loads, which cost the bundle ~50 ms at start-up; the bundle is readable JS (not minified).
 * Returns how many files it wrote.
 */
async function bundleCli(root: string, compiled: string): Promise<number> {
  let esbuild: typeof import("esbuild");
  try {
    esbuild = createRequire(join(root, "package.json"))("esbuild") as typeof import("esbuild");
  } catch {
    throw new Error(`cannot build the package: esbuild is not installed in ${root} (run npm install)`);
  }
  const cmd = join(compiled, "cmd");
  const entry = join(cmd, "zsha.js");
  const r = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    splitting: true,
    platform: "node",
    format: "esm",
    target: `node${process.versions.node}`,
    // The checkout's packages, though `compiled` is outside it (a staging folder of outDir).
    nodePaths: [join(root, "node_modules")],
    external: ["ssh2"],
    plugins: [
      {
        name: "agent-unbundled",
        setup(b) {
          b.onResolve({ filter: /^\.\/agent\.js$/ }, (a) =>
            a.importer === entry ? { path: AGENT_IMPORT, external: true } : undefined,
          );
        },
      },
    ],
    // The CommonJS packages bundled (grpc-js) require node's builtins: an ESM bundle has no `require`.
    banner: {
      js: 'import { createRequire as __zshaRequire } from "node:module"; const require = __zshaRequire(import.meta.url);',
    },
    entryNames: "[name]",
    chunkNames: "zsha-[name]-[hash]",
    write: false,
    outdir: cmd,
    logLevel: "silent",
  });
  // Warnings are real problems here (an import esbuild could not resolve is a CLI command that fails).
  if (r.warnings.length > 0) {
    throw new Error(`esbuild warned: ${r.warnings.map((w) => w.text).join("; ")}`);
  }
  await rm(join(cmd, "zsha.js.map"), { force: true });
  for (const f of r.outputFiles) await writeFile(f.path, f.contents);
  return r.outputFiles.length;
}

/** A package of the closure: where it is in the checkout (symlinks kept) and where it goes in app/. */
interface Dependency {
  readonly name: string;
  /** Its folder as Node finds it from the requiring package (may be a symlink, e.g. to packages/). */
  readonly dir: string;
  /** Relative to the checkout's root, e.g. node_modules/a/node_modules/b: the same place under app/. */
  readonly rel: string;
}

interface Manifest {
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  exports?: unknown;
  [k: string]: unknown;
}

async function readManifest(dir: string): Promise<Manifest> {
  return JSON.parse(await readFile(join(dir, "package.json"), "utf8")) as Manifest;
}

/**
 * Every package the root's `dependencies` and `optionalDependencies` need, transitively, each found the
 * way Node finds it from the requiring package: the candidate node_modules folders of
 * `require.resolve.paths(name)`, nearest first. That needs no `exports` entry for package.json (many
 * packages have none) and keeps the logical place of a symlinked package, which is the place it must have
 * in the copy. Not npm: nodes have no registry, and npm's view may include what is not installed.
 */
export async function productionClosure(root: string, log: Log = () => {}): Promise<Dependency[]> {
  const found = new Map<string, Dependency>();
  const queue: { dir: string; manifest: Manifest }[] = [{ dir: root, manifest: await readManifest(root) }];
  for (let item = queue.shift(); item; item = queue.shift()) {
    const { dir, manifest } = item;
    const wanted = [
      ...Object.keys(manifest.dependencies ?? {}).map((n) => ({ n, optional: false })),
      ...Object.keys(manifest.optionalDependencies ?? {}).map((n) => ({ n, optional: true })),
    ];
    for (const { n, optional } of wanted) {
      if (isBuildOnly(n)) continue;
      const at = locate(n, dir, root);
      if (!at) {
        if (optional) {
          log(`package: optional dependency ${n} of ${manifest.name ?? dir} is not installed; left out`);
          continue;
        }
        throw new Error(
          `${n}, a dependency of ${manifest.name ?? dir}, is not installed in ${root} (run npm ci)`,
        );
      }
      if (found.has(at)) continue;
      found.set(at, { name: n, dir: at, rel: relative(root, at) });
      queue.push({ dir: at, manifest: await readManifest(at) });
    }
  }
  return [...found.values()].sort((a, b) => a.rel.localeCompare(b.rel));
}

function locate(name: string, fromDir: string, root: string): string | undefined {
  // Asked for a file inside the package: for a bare name that is also a builtin's ("buffer"), Node answers
  // null, though an installed package of that name is what `buffer/` resolves to.
  const candidates = createRequire(join(fromDir, "package.json")).resolve.paths(`${name}/package.json`) ?? [];
  for (const nm of candidates) {
    // Only the checkout's own node_modules: a package found above it would not be in the copy.
    if (!`${nm}${sep}`.startsWith(`${root}${sep}node_modules${sep}`)) continue;
    const dir = join(nm, name);
    if (existsSync(join(dir, "package.json"))) return dir;
  }
  return undefined;
}

/** Whether @zsha/libvirt is installed and its addon built (the package then ships it). */
async function libvirtAddonPresent(root: string): Promise<boolean> {
  const release = join(root, "node_modules", "@zsha", "libvirt", "build", "Release");
  const files = await readdir(release).catch(() => [] as string[]);
  return files.some((f) => f.endsWith(".node"));
}

async function copyDependency(
  root: string,
  dep: Dependency,
  app: string,
  compiled: string,
  log: Log,
): Promise<void> {
  const dest = join(app, dep.rel);
  const real = await realpath(dep.dir);
  if (!`${real}${sep}`.startsWith(`${await realpath(join(root, "node_modules"))}${sep}`)) {
    await copyLocalPackage(root, dep, real, dest, compiled, log);
    return;
  }
  await cp(dep.dir, dest, {
    recursive: true,
    dereference: true,
    filter: async (src) => keepInDependency(dep.dir, relative(dep.dir, src), (await stat(src)).isDirectory()),
  });
}

/**
 * What of an installed npm package the program never reads: its own node_modules (its dependencies are
 * copied as packages of their own), prebuilt addons for other platforms than this one, node-gyp's
 * intermediate files next to a built addon, and TypeScript sources and declarations.
 */
function keepInDependency(pkgDir: string, rel: string, dir: boolean): boolean {
  if (rel === "") return true;
  const parts = rel.split(sep);
  if (parts[0] === "node_modules") return false;
  if (parts[0] === "prebuilds" && parts[1] !== undefined) {
    // node-gyp-build's folder names: <platform>-<arch>[+<arch>…], e.g. linux-x64, darwin-x64+arm64.
    const [platform, archs = ""] = parts[1].split(/-(.*)/s);
    return platform === process.platform && archs.split("+").includes(process.arch);
  }
  // node-gyp's output folder (build/ next to a binding.gyp, e.g. ssh2's lib/protocol/crypto/build):
  // only the addons; the rest is object files and makefiles.
  const b = parts.indexOf("build");
  if (b >= 0 && existsSync(join(pkgDir, ...parts.slice(0, b), "binding.gyp"))) {
    if (parts.includes("obj.target") || parts.includes(".deps")) return false;
    return dir || rel.endsWith(".node");
  }
  return dir || !/\.(d\.)?[cm]?ts$/.test(rel);
}

/**
 * A package of this repository (packages/*, linked into node_modules by a `file:` dependency) exports its
 * TypeScript source; the package ships what it needs at run time instead: its package.json pointing at
 * the compiled JS (tsconfig.build.json compiles its src/), the JS, and the built addon.
 */
async function copyLocalPackage(
  root: string,
  dep: Dependency,
  real: string,
  dest: string,
  compiled: string,
  log: Log,
): Promise<void> {
  const addons = (await readdir(join(real, "build", "Release")).catch(() => [] as string[])).filter((f) =>
    f.endsWith(".node"),
  );
  if (addons.length === 0) {
    log(`package: ${dep.name} has no built addon (build/Release/*.node); left out`);
    return;
  }
  const js = join(compiled, relative(root, real), "src");
  if (!existsSync(js)) {
    throw new Error(
      `${dep.name}: ${relative(root, real)}/src is not compiled; add it to tsconfig.build.json`,
    );
  }
  await mkdir(join(dest, "build", "Release"), { recursive: true });
  await rename(js, join(dest, "dist"));
  for (const f of addons)
    await copyFile(join(real, "build", "Release", f), join(dest, "build", "Release", f));
  const {
    scripts: _s,
    gypfile: _g,
    dependencies: _d,
    devDependencies: _dd,
    ...manifest
  } = await readManifest(real);
  const shipped = { ...manifest, exports: compiledExports(manifest.exports, dep.name) };
  await writeFile(join(dest, "package.json"), `${JSON.stringify(shipped, null, 2)}\n`);
}

/** "./src/x.ts" → "./dist/x.js" in an exports map (string or { subpath: string }). */
function compiledExports(exports: unknown, name: string): unknown {
  const map = (target: unknown): string => {
    const m = typeof target === "string" ? /^\.\/src\/(.+)\.ts$/.exec(target) : null;
    if (!m) throw new Error(`${name}: export target ${JSON.stringify(target)} is not ./src/*.ts`);
    return `./dist/${m[1]}.js`;
  };
  if (typeof exports === "string") return map(exports);
  if (exports && typeof exports === "object") {
    return Object.fromEntries(Object.entries(exports).map(([k, v]) => [k, map(v)]));
  }
  throw new Error(`${name}: package.json has no exports to point at the compiled JS`);
}

async function shippedPackageJson(root: string): Promise<Record<string, unknown>> {
  const pkg = await readManifest(root);
  return {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    type: "module",
    private: true,
  };
}

const WRAPPER = `#!/bin/sh
# zsha: runs the packaged program with the Node runtime shipped next to this script (see
# src/install/package.ts). Resolves its own place, through a symlink too, so any prefix works.
self=$(readlink -f -- "$0") || exit 127
bin=\${self%/*}
exec "$bin/node" --enable-source-maps "$bin/../${PACKAGE_LAYOUT.entry}" "$@"
`;

async function writeRuntime(top: string): Promise<void> {
  await mkdir(join(top, "bin"), { recursive: true });
  await copyFile(process.execPath, join(top, PACKAGE_LAYOUT.node));
  await chmod(join(top, PACKAGE_LAYOUT.node), 0o755);
  await writeFile(join(top, PACKAGE_LAYOUT.wrapper), WRAPPER, { mode: 0o755 });
}

/**
 * The system tar (GNU tar on every Debian node; no npm library needed for what it does well) of bin/ and
 * app/ under `prefix`: members sorted, owned by root, so the same tree gives the same listing.
 */
async function tarTree(prefix: string, tarball: string): Promise<void> {
  const tmp = join(dirname(tarball), `.${basename(tarball)}.${process.pid}`);
  const args = ["--sort=name", "--owner=0", "--group=0", "--numeric-owner", "-czf", tmp, "-C", prefix];
  try {
    await execa("tar", [...args, "--", ...MEMBERS]);
    await rename(tmp, tarball);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
