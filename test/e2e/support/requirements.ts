/**
 * Whether the end-to-end harness can run here: root, cgroup v2 with cgroup.kill, and the programs it uses.
 * Returns one sentence saying what is missing (for a printed skip reason), or undefined.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CGROUP2 } from "./run.js";

const DIRS = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/** Programs every harness run needs (hosts, faults, ssh, Ceph, libvirt, the guest image). */
export const HARNESS_PROGRAMS = [
  "ip",
  "nsenter",
  "unshare",
  "ping",
  "iptables",
  "nft",
  "sshd",
  "ssh",
  "sshpass",
  "ssh-keygen",
  "chpasswd",
  "ceph-mon",
  "ceph-osd",
  "ceph",
  "ceph-authtool",
  "monmaptool",
  "rbd",
  "qemu-img",
  "libvirtd",
  "virsh",
  "qemu-system-x86_64",
  "as",
  "ld",
];

/**
 * Why the end-to-end tests cannot run here, or undefined. Where they must run (CI sets ZSHA_E2E_REQUIRED=1
 * in .ci/run) a missing piece is an error, never a quiet skip.
 */
export function e2eUnavailable(programs: readonly string[] = HARNESS_PROGRAMS): string | undefined {
  const why = unavailableReason(programs);
  if (why && process.env.ZSHA_E2E_REQUIRED === "1")
    throw new Error(`end-to-end tests are required here (ZSHA_E2E_REQUIRED=1) but cannot run: ${why}`);
  return why;
}

function unavailableReason(programs: readonly string[]): string | undefined {
  if (process.getuid?.() !== 0) return "needs root (namespaces, cgroups, mounts)";
  if (!existsSync(join(CGROUP2, "cgroup.kill")) && !existsSync(join(CGROUP2, "cgroup.procs")))
    return `no cgroup v2 hierarchy at ${CGROUP2}`;
  for (const f of ["/lib/systemd/systemd", "/usr/bin/python3"]) if (!existsSync(f)) return `${f} is missing`;
  const missing = programs.filter((p) => !DIRS.some((d) => existsSync(join(d, p))));
  if (missing.length > 0) return `missing programs: ${missing.join(", ")} (see .ci/install.d/e2e.pkgs)`;
  return undefined;
}
