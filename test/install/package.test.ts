// The package `zsha install` copies to the nodes (src/install/package.ts), built for real from this checkout,
// unpacked into a fresh prefix and run the way a node runs it: a clean environment (PATH=/usr/bin:/bin, no
// NODE_PATH, cwd /), only the shipped runtime, the checkout out of reach of module resolution.

import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { lstat, mkdir, mkdtemp, readdir, readFile, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { basename, dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type PackageInfo, packageSelf, productionClosure } from "../../src/install/package.js";
import { freePort, until } from "../support/cluster.js";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const rootPkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
  version: string;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

const temps: string[] = [];
async function temp(label: string): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), `zsha-${label}-`));
  temps.push(d);
  return d;
}

/** Runs a program as a node would: nothing from this test's environment, cwd /. */
function clean(file: string, args: string[], cwd = "/") {
  return execa(file, args, { env: { PATH: "/usr/bin:/bin" }, extendEnv: false, cwd, reject: false });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function wallMs(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

/** rel path → kind, mode and content hash of every entry under `dir` (symlinks would show as "link"). */
async function treeOf(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      const st = await lstat(p);
      const mode = (st.mode & 0o777).toString(8);
      if (e.isSymbolicLink()) out.set(relative(dir, p), "link");
      else if (e.isDirectory()) {
        out.set(relative(dir, p), `dir ${mode}`);
        await walk(p);
      } else {
        const h = createHash("sha256")
          .update(await readFile(p))
          .digest("hex");
        out.set(relative(dir, p), `file ${mode} ${h}`);
      }
    }
  };
  await walk(dir);
  return out;
}

let pkg: PackageInfo;
let prefix: string;
let zsha: string;
let buildMs = 0;
const logs: string[] = [];

beforeAll(async () => {
  const out = await temp("pkg");
  const t = performance.now();
  pkg = await packageSelf({ outDir: out, log: (l) => logs.push(l) });
  buildMs = performance.now() - t;
  prefix = await temp("prefix");
  await execa("tar", ["-xzf", pkg.tarball, "-C", prefix]);
  zsha = join(prefix, "bin", "zsha");
  console.log(
    `package: built in ${Math.round(buildMs)} ms, ${(pkg.bytes / 2 ** 20).toFixed(1)} MiB, ${pkg.tarball}`,
  );
}, 180_000);

afterAll(async () => {
  for (const d of temps) await rm(d, { recursive: true, force: true });
});

describe("zsha package", () => {
  it("is out of reach of the checkout: no node_modules above the prefix", () => {
    for (let d = prefix; d !== dirname(d); d = dirname(d)) {
      expect(existsSync(join(dirname(d), "node_modules")), dirname(d)).toBe(false);
    }
  });

  it("has the layout the installer relies on, real files only, production dependencies only", async () => {
    const tree = await treeOf(prefix);
    expect([...tree.values()].filter((v) => v === "link")).toEqual([]);
    expect(tree.get("bin/node")).toMatch(/^file 755 /);
    expect(tree.get("bin/zsha")).toMatch(/^file 755 /);
    expect(tree.has("app/dist/cmd/zsha.js")).toBe(true);
    expect(tree.has("app/dist/cmd/agent.js")).toBe(true);
    // The CLI is bundled (entry and chunks): it imports no package from node_modules but ssh2 (for zsha
    // install), and the agent as tsc compiled it.
    const cli = [...tree.keys()].filter((k) => /^app\/dist\/cmd\/zsha(-[\w-]+)?\.js$/.test(k));
    expect(cli.length).toBeGreaterThan(3);
    const imported = new Set<string>();
    for (const k of cli) {
      const js = await readFile(join(prefix, k), "utf8");
      for (const m of js.matchAll(/(?:\bfrom|\bimport\(?)\s*"([\w@./:-]+)"/g)) imported.add(m[1]!);
    }
    const packages = [...imported].filter((i) => !i.startsWith("node:") && !i.startsWith("./zsha-"));
    expect(packages.sort()).toEqual(["./agent.js", "ssh2"]);
    expect(tree.has("app/deploy/samples/CephConf.config.json")).toBe(true);
    expect(tree.has("app/deploy/zsha.bash-completion")).toBe(true);
    // Only bin/ and app/ at the top; no tests, benches or dev tools compiled in.
    expect([...tree.keys()].filter((k) => !k.includes("/")).sort()).toEqual(["app", "bin"]);
    expect([...tree.keys()].filter((k) => /^app\/dist\/(test|bench)\b|cmd\/sim/.test(k))).toEqual([]);
    expect([...tree.keys()].filter((k) => k.startsWith("app/dist/") && k.endsWith(".ts"))).toEqual([]);

    const app = JSON.parse(await readFile(join(prefix, "app/package.json"), "utf8"));
    expect(app).toMatchObject({ name: "zsha", version: rootPkg.version, type: "module" });
    const build = JSON.parse(await readFile(join(prefix, "app/BUILD.json"), "utf8"));
    const head =
      (await execa("git", ["-C", ROOT, "rev-parse", "HEAD"], { reject: false })).stdout || "unknown";
    expect(build).toMatchObject({ version: rootPkg.version, commit: head, node: process.version });
    expect(new Date(build.buildDate).getTime()).toBeGreaterThan(Date.now() - 10 * 60_000);
    expect(pkg).toMatchObject({ version: rootPkg.version, commit: head });

    for (const d of Object.keys(rootPkg.dependencies)) {
      expect(existsSync(join(prefix, "app/node_modules", d, "package.json")), d).toBe(true);
    }
    for (const d of Object.keys(rootPkg.devDependencies)) {
      expect(existsSync(join(prefix, "app/node_modules", d)), `devDependency ${d}`).toBe(false);
    }
    // Exactly the closure: every shipped package is one the walk found, and the reverse.
    const closure = (await productionClosure(ROOT)).map((d) => d.rel).sort();
    const shipped = [...tree.keys()]
      .map((k) => /^app\/((?:node_modules\/(?:@[^/]+\/)?[^/@][^/]*\/)+)package\.json$/.exec(k)?.[1])
      .filter((k): k is string => k !== undefined)
      .map((k) => k.slice(0, -1))
      .sort();
    expect(shipped).toEqual(closure);
  });

  it("runs zsha -v, -h, config-sample and check-config with the shipped runtime alone", async () => {
    const v = await clean(zsha, ["-v"]);
    expect(v.exitCode, v.stderr).toBe(0);
    expect(v.stdout).toMatch(new RegExp(`^zsha ${rootPkg.version.replaceAll(".", "\\.")}\\b`));
    // From BUILD.json: the installed node has no checkout to ask git about.
    expect(v.stdout).toContain(`commit ${pkg.commit.slice(0, 12)}`);
    expect(v.stdout).toContain(`node ${process.version}`);

    const h = await clean(zsha, ["-h"]);
    expect(h.exitCode, h.stderr).toBe(0);
    expect(h.stdout).toContain("check-config");
    expect(h.stdout).toContain("config-sample");

    const s = await clean(zsha, ["config-sample", "CephConf"]);
    expect(s.exitCode, s.stderr).toBe(0);
    const file = s.stdout.trim();
    expect(file).toMatch(/CephConf\.config\.json$/);
    const c = await clean(zsha, ["check-config", file]);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toBe("config file check pass");

    // Through a symlink on PATH, as the installer links /usr/local/bin/zsha.
    const bin = await temp("bin");
    await execa("ln", ["-s", zsha, join(bin, "zsha")]);
    const viaLink = await clean(join(bin, "zsha"), ["-v"]);
    expect(viaLink.stdout).toBe(v.stdout);
  });

  it("runs an agent (LevelDB through classic-level's prebuilt addon) that the shipped CLI talks to", async () => {
    const dir = await temp("agent");
    const port = await freePort();
    const sock = join(dir, "api.sock");
    const agent = execa(
      zsha,
      [
        "agent",
        "--name=n1",
        `--peer-listen=127.0.0.1:${port}`,
        `--initial-cluster=n1=127.0.0.1:${port}`,
        `--socket=${sock}`,
        `--data-dir=${join(dir, "data")}`,
        "--log-level=warn",
      ],
      { env: { PATH: "/usr/bin:/bin" }, extendEnv: false, cwd: "/", reject: false, all: true },
    );
    try {
      const status = await until("the packaged agent to lead and answer zsha status", async () => {
        if (agent.exitCode !== null && agent.exitCode !== undefined) throw new Error("agent exited");
        const r = await clean(zsha, ["--endpoint", `unix:${sock}`, "status"]);
        return r.exitCode === 0 && /n1\s.*leader/.test(r.stdout) ? r.stdout : undefined;
      });
      expect(status).toMatch(/>>>Members\nn1\s+127\.0\.0\.1:\d+\s+alive\s+leader/);
      expect((await readdir(join(dir, "data"))).some((f) => f === "CURRENT")).toBe(true);
    } finally {
      agent.kill("SIGTERM");
      const r = await agent;
      expect(r.exitCode, r.all).toBe(0);
    }
  }, 30_000);

  it("loads @zsha/libvirt's built addon the way the agent does, or leaves it out when it is not built", async () => {
    const built = existsSync(join(ROOT, "node_modules/@zsha/libvirt/build/Release/zsha_libvirt.node"));
    const shipped = join(prefix, "app/node_modules/@zsha/libvirt");
    expect(existsSync(shipped)).toBe(built);
    if (built) {
      expect((await readdir(shipped)).sort()).toEqual(["build", "dist", "package.json"]);
    }
    const loader = join(prefix, "app/dist/src/hypervisor/libvirt.js");
    const r = await clean(join(prefix, "bin/node"), [
      "--input-type=module",
      "-e",
      `const { loadLibvirt } = await import(${JSON.stringify(loader)});
       const l = await loadLibvirt();
       console.log(JSON.stringify(l.ok ? { ok: true, version: l.version } : l));`,
    ]);
    expect(r.exitCode, r.stderr).toBe(0);
    const load = JSON.parse(r.stdout) as { ok: boolean; version?: string; reason?: string };
    if (built) expect(load).toMatchObject({ ok: true, version: expect.stringMatching(/^\d+\.\d+\.\d+$/) });
    else expect(load.reason).toContain("not installed");
  });

  it("re-packs itself from the installed prefix into the same tree, and reuses that tarball", async () => {
    const out = await temp("repack");
    // Litter of a build killed two hours ago goes; a build under way right now keeps its staging folder.
    await mkdir(join(out, ".stage-killed", "zsha"), { recursive: true });
    const twoHoursAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(join(out, ".stage-killed"), twoHoursAgo, twoHoursAgo);
    await mkdir(join(out, ".stage-running"));
    const script = `const m = await import(${JSON.stringify(join(prefix, "app/dist/src/install/package.js"))});
      const lines = [];
      const a = await m.packageSelf({ outDir: ${JSON.stringify(out)}, log: (l) => lines.push(l) });
      const b = await m.packageSelf({ outDir: ${JSON.stringify(out)}, log: (l) => lines.push(l) });
      // A damaged cached tarball (its sha256 no longer the sidecar's) is not reused: it is packed again.
      (await import("node:fs")).writeFileSync(a.tarball, "damaged");
      const c = await m.packageSelf({ outDir: ${JSON.stringify(out)}, log: (l) => lines.push(l) });
      console.log(JSON.stringify({ self: m.selfLocation(), a, b, c, lines }));`;
    const r = await clean(join(prefix, "bin/node"), ["--input-type=module", "-e", script]);
    expect(r.exitCode, r.stderr).toBe(0);
    const res = JSON.parse(r.stdout) as {
      self: unknown;
      a: PackageInfo;
      b: PackageInfo;
      c: PackageInfo;
      lines: string[];
    };
    expect(res.self).toEqual({ kind: "installed", prefix });
    expect(res.a).toMatchObject({ version: pkg.version, commit: pkg.commit });
    expect(res.b).toEqual(res.a);
    expect(res.c).toEqual(res.a); // tar of the same tree, same order and owners: the same bytes
    expect(res.lines.filter((l) => l.includes("reusing"))).toHaveLength(1);

    expect(existsSync(join(out, ".stage-killed"))).toBe(false);
    expect(existsSync(join(out, ".stage-running"))).toBe(true);

    const again = await temp("prefix2");
    await execa("tar", ["-xzf", res.a.tarball, "-C", again]);
    expect(await treeOf(again)).toEqual(await treeOf(prefix));
  }, 60_000);

  it("reuses the package of a clean checkout's commit; builds a changed checkout afresh", async () => {
    if (basename(pkg.tarball).includes("-dirty")) {
      expect(logs.some((l) => l.includes("uncommitted changes"))).toBe(true);
      return;
    }
    const again: string[] = [];
    const t = performance.now();
    expect(await packageSelf({ outDir: dirname(pkg.tarball), log: (l) => again.push(l) })).toEqual(pkg);
    expect(again.some((l) => l.includes("reusing"))).toBe(true);
    console.log(`package: cached package found in ${Math.round(performance.now() - t)} ms`);
  });

  it("starts zsha -v faster than tsx from the checkout (figures in the log)", async () => {
    await clean(zsha, ["-v"]); // warm the page cache
    const packaged: number[] = [];
    for (let i = 0; i < 5; i++) packaged.push(await wallMs(() => clean(zsha, ["-v"])));
    const source: number[] = [];
    for (let i = 0; i < 3; i++) {
      source.push(
        await wallMs(() =>
          execa(process.execPath, ["--import", "tsx", join(ROOT, "cmd/zsha.ts"), "-v"], { cwd: ROOT }),
        ),
      );
    }
    const p = median(packaged);
    const s = median(source);
    console.log(
      `package: zsha -v ${Math.round(p)} ms packaged vs ${Math.round(s)} ms via tsx (${(s / p).toFixed(1)}x); build ${Math.round(buildMs)} ms; ${pkg.bytes} bytes`,
    );
    expect(p).toBeLessThan(s);
  }, 30_000);
});
