// `npm install` hook: builds the addon with node-gyp. When Node's own headers are installed next to the
// binary (Debian/NodeSource packages put them in /usr/include/node), build against them instead of
// letting node-gyp download a headers tarball, which fails on machines without internet access.
// Fails (non-zero) when libvirt-dev is missing; the package is an optional dependency, so npm then skips it
// and zsha falls back to its simulated hypervisor.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";

const prefix = dirname(dirname(process.execPath));
const args = ["rebuild", `--jobs=${process.env.JOBS ?? "2"}`];
if (existsSync(join(prefix, "include", "node", "node_api.h"))) args.push(`--nodedir=${prefix}`);
const pc = spawnSync("pkg-config", ["--exists", "libvirt", "libvirt-qemu"]);
if (pc.status !== 0) {
  console.error(
    "@zsha/libvirt: libvirt development files not found (pkg-config libvirt); skipping the native build",
  );
  process.exit(1);
}
const r = spawnSync("node-gyp", args, { stdio: "inherit" });
process.exit(r.status ?? 1);
