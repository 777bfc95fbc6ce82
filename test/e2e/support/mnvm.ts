/**
 * Watching the MN-VM on the harness's hosts the way an operator would, plus what only a test can see:
 * where libvirt runs it, its serial console (the tiny guest's tick counter), and which guest incarnation's
 * writes are on the shared RBD image.
 */
import { expect } from "vitest";
import { parseGuestSector } from "./guest.js";
import type { Hosts } from "./hosts.js";
import { sleep } from "./run.js";
import { type StatusJson, statusOn } from "./zsha-nodes.js";

export const DOMAIN = "zsha-mnvm";
export const SERIAL_LOG = `/var/log/libvirt/qemu/${DOMAIN}-serial.log`;

/** Polls `zsha status --json` on the first of `on` that answers until `ok` holds; returns that status. */
export async function waitStatus(
  hosts: Hosts,
  on: readonly string[],
  what: string,
  ok: (s: StatusJson) => boolean,
  timeoutMs = 120_000,
): Promise<StatusJson> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  for (;;) {
    for (const h of on) {
      if (!hosts.isUp(h)) continue;
      try {
        const st = await statusOn(hosts, h);
        if (ok(st)) return st;
        last = `${h}: MN-VM ${st.mnvm.state} on ${st.mnvm.owner} (epoch ${st.mnvm.epoch}); members ${st.members
          .map((m) => `${m.name}:${m.alive ? "alive" : "failed"}`)
          .join(" ")}`;
        break;
      } catch (e) {
        last = `${h}: ${(e as Error).message}`;
      }
    }
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${last}`);
    await sleep(250);
  }
}

export const running = (s: StatusJson) => s.mnvm.state === "running" && s.mnvm.owner !== null;
export const allAlive = (s: StatusJson) => s.members.length === 3 && s.members.every((m) => m.alive);
/** Every node's agent reports, and sees its hypervisor and the MN-VM image (a just-booted one may not yet). */
export const allReady = (s: StatusJson) =>
  s.nodes.length === 3 && s.nodes.every((n) => n.reporting && n.hypervisor?.ok && n.image?.ok);

/** The hosts whose libvirt runs the MN-VM right now (powered-off hosts are skipped). */
export async function runningOn(hosts: Hosts): Promise<string[]> {
  const out: string[] = [];
  for (const h of hosts.names()) {
    if (!hosts.isUp(h)) continue;
    // A libvirtd that does not answer is not "nothing runs here": that throws, and callers wait on.
    const r = await hosts.exec(h, ["virsh", "-q", "list", "--name"], { timeoutMs: 60_000 });
    if (r.stdout.split("\n").includes(DOMAIN)) out.push(h);
  }
  return out;
}

/** The tick counters host `h`'s copy of the MN-VM printed on its serial console so far. */
export async function serialTicks(hosts: Hosts, h: string): Promise<number[]> {
  const r = await hosts.exec(h, ["cat", SERIAL_LOG], { reject: false });
  return [...r.stdout.matchAll(/zsha-guest tick (\d+)/g)].map((m) => Number(m[1]));
}

/** What the guest last wrote to the shared image (read with the admin key on host `via`). */
export async function imageSector(
  hosts: Hosts,
  via: string,
): Promise<{ bootId: number; tick: number } | undefined> {
  const r = await hosts.exec(via, [
    "sh",
    "-c",
    "rbd export zstack/mnvm.img - 2>/dev/null | dd bs=512 skip=1 count=1 2>/dev/null | base64 -w0",
  ]);
  return parseGuestSector(Buffer.from(r.stdout.trim(), "base64"));
}

/** Exactly one host runs the MN-VM, the one status names, and its guest is ticking. */
export async function expectRunningOnlyOn(hosts: Hosts, owner: string): Promise<void> {
  expect(await runningOn(hosts)).toEqual([owner]);
  const before = (await serialTicks(hosts, owner)).at(-1) ?? -1;
  await waitFor(
    `the guest on ${owner} to tick`,
    async () => ((await serialTicks(hosts, owner)).at(-1) ?? -1) > before,
    20_000,
  );
}

/** Polls `ok` until it holds; a probe that throws counts as "not yet". */
export async function waitFor(what: string, ok: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}
