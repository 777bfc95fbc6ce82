/**
 * The shared disk of the simulated cluster, modelled on what matters for split brain in Ceph RBD:
 * every started qemu opens the image as a new client (a new address, as an RBD watcher has), a client can
 * be blocklisted (it then can no longer write, though it may still look open), and a client of a host that
 * died keeps showing as a watcher for a while before it times out, as in `rbd status`.
 *
 * The MN-VM invariant the simulator checks: at most one client of the image can write.
 */

import type { SimScheduler } from "./sim-scheduler.js";

export interface SimDiskClient {
  /** Unique per opening, like an RBD client address `ip:port/nonce`. */
  readonly address: string;
  readonly image: string;
  readonly host: string;
  readonly domain: string;
  /** Still shown as a user of the image. */
  readonly open: boolean;
  /** Cut off by a fence: writes fail. */
  readonly blocklisted: boolean;
  /** Its qemu is gone (host died); it lingers until the watch times out. */
  readonly stale: boolean;
}

interface Client {
  address: string;
  image: string;
  host: string;
  domain: string;
  blocklisted: boolean;
  stale: boolean;
}

export class SimStorage {
  private readonly clients = new Map<string, Client>();
  private nonce = 0;

  constructor(
    private readonly scheduler: SimScheduler,
    /** How long a dead client stays listed (Ceph's default watch timeout is 30 s). */
    private readonly staleWatcherMs = 30_000,
  ) {}

  /** A qemu on `host` opens `image`; returns its client address. */
  open(image: string, host: string, domain: string): string {
    const address = `${host}:0/${++this.nonce}`;
    this.clients.set(address, { address, image, host, domain, blocklisted: false, stale: false });
    return address;
  }

  /** The qemu closed the image (clean stop, destroy, migration away). */
  close(address: string): void {
    this.clients.delete(address);
  }

  /** The qemu vanished without closing (host power loss): it lingers as a watcher, then times out. */
  abandon(address: string): void {
    const c = this.clients.get(address);
    if (!c) return;
    c.stale = true;
    this.scheduler.schedule(this.staleWatcherMs, () => this.clients.delete(address));
  }

  /** Fences a client: from now on its writes fail (like `ceph osd blocklist add`). */
  blocklist(address: string): boolean {
    const c = this.clients.get(address);
    if (!c) return false;
    c.blocklisted = true;
    return true;
  }

  /** Everyone who has `image` open, as `rbd status` would list them. */
  users(image: string): SimDiskClient[] {
    return [...this.clients.values()].filter((c) => c.image === image).map((c) => ({ ...c, open: true }));
  }

  /** Whether the client at `address` can write right now. */
  canWrite(address: string | undefined): boolean {
    if (address === undefined) return false;
    const c = this.clients.get(address);
    return c !== undefined && !c.blocklisted && !c.stale;
  }

  /** Clients of `image` that can write: more than one is split brain. */
  writers(image: string): SimDiskClient[] {
    return this.users(image).filter((c) => !c.blocklisted && !c.stale);
  }
}
