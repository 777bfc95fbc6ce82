// The simulated image store, over the simulated cluster's shared disk (src/hypervisor/sim-storage.ts):
// fencing blocklists every other client of the image, as the Ceph backend does with the OSD blocklist.
// Used by the demo and the deterministic simulator.

import type { SimWorld } from "../hypervisor/sim.js";
import type {
  DiskSource,
  FenceRequest,
  FenceResult,
  ImageCheck,
  ImageStore,
  ImageUser,
  Owner,
  ReadProbe,
  StorageHealth,
} from "./image-store.js";
import { ImageError } from "./image-store.js";

export class SimImageStore implements ImageStore {
  readonly kind = "file" as const;
  /** Set by the simulator: this host cannot reach the storage network. */
  unreachable = false;

  constructor(
    private readonly world: SimWorld,
    /** The image path the MN-VM's domain XML names (its disk source). */
    private readonly image: string,
  ) {}

  private reach(): void {
    if (this.unreachable)
      throw new ImageError("timeout", "the shared storage does not answer from this host");
  }

  private users(): ImageUser[] {
    return this.world.storage
      .users(this.image)
      .filter((c) => !c.blocklisted)
      .map((c) => ({ kind: "watcher" as const, address: c.address, host: c.host, client: c.domain }));
  }

  async check(): Promise<ImageCheck> {
    this.reach();
    return { name: this.image, sizeBytes: 8 << 30, users: this.users() };
  }

  describeDisk(): DiskSource {
    return { type: "file", path: this.image, format: "raw" };
  }

  async fence(req: FenceRequest): Promise<FenceResult> {
    this.reach();
    const started = this.world.scheduler.now();
    const keep = new Set(req.keepAddresses ?? []);
    const fenced = this.users().filter((u) => !keep.has(u.address));
    for (const u of fenced) this.world.storage.blocklist(u.address);
    const remaining = this.users();
    if (remaining.some((u) => !keep.has(u.address))) {
      throw new ImageError(
        "fence-incomplete",
        `clients still able to write: ${remaining.map((u) => u.address).join(", ")}`,
      );
    }
    return { fenced, remaining, durationMs: this.world.scheduler.now() - started };
  }

  async claim(_self: Owner): Promise<void> {
    this.reach();
  }

  async renew(_self: Owner): Promise<void> {
    this.reach();
  }

  async release(_self: Owner): Promise<void> {}

  async health(): Promise<StorageHealth> {
    return this.unreachable
      ? { status: "ERR", checks: ["shared storage unreachable"], summary: [] }
      : { status: "OK", checks: [], summary: ["simulated shared storage"] };
  }

  async readProbe(): Promise<ReadProbe> {
    this.reach();
    return { bytes: 4096, latencyMs: 1, target: this.image };
  }
}
