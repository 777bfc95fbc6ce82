/**
 * The MN-VM's disk as the HA controller sees it: does the image exist, who uses it, how the domain XML
 * names it, and — the part safety rests on — how to cut a previous owner off from it before a new owner
 * starts the MN-VM (DESIGN.md "The MN-VM lease").
 *
 * Two backends: `CephImageStore` (an RBD image; fencing is enforced by the OSDs through the OSD
 * blocklist) and `FileImageStore` (a file in a shared folder; fencing is an epoch-stamped lease file the
 * old owner must honour, see file.ts for what that can and cannot guarantee).
 *
 * Contract for callers:
 * - Every call is bounded in time; a hung cluster or NFS server yields an `ImageError` (`timeout` or
 *   `monitors-unreachable`), never a promise that stays pending.
 * - `fence` resolves only once it has confirmed that no writer other than the ones the caller keeps is
 *   left; otherwise it rejects (`fence-incomplete`) and the caller must not start the MN-VM.
 */

/** Who is asking: the node that owns (or is about to own) the MN-VM, and its ownership epoch from the KV. */
export interface Owner {
  readonly node: string;
  readonly epoch: number;
}

/** A client that has the image open (an RBD watcher), holds a lock on it, or holds the file lease. */
export interface ImageUser {
  readonly kind: "watcher" | "lock" | "lease";
  /** RBD client address `ip:port/nonce` (unique per client instance), or the lease holder's node. */
  readonly address: string;
  /** Host part of the address (for RBD, the node's storage IP), or the lease holder's node name. */
  readonly host: string;
  /** `client.4174` for RBD; absent for a file lease. */
  readonly client?: string;
  /** RBD lock id (`auto <cookie>` for the exclusive lock), needed to break it. */
  readonly lockId?: string;
  /** File lease only: the holder's epoch and when it last renewed (wall clock, ms). */
  readonly epoch?: number;
  readonly renewedAtMs?: number;
}

export interface ImageCheck {
  readonly name: string;
  readonly sizeBytes: number;
  /** Everything that has the image open or locked right now (empty when nobody uses it). */
  readonly users: readonly ImageUser[];
}

/** What the domain XML needs to attach the disk. */
export type DiskSource =
  | {
      readonly type: "rbd";
      readonly pool: string;
      readonly image: string;
      readonly monitors: readonly { readonly host: string; readonly port: number }[];
      /** cephx user without the `client.` prefix, e.g. `zsha`. */
      readonly user: string;
      /** UUID of the libvirt secret that holds the user's key. */
      readonly secretUuid: string;
    }
  | { readonly type: "file"; readonly path: string; readonly format: "raw" | "qcow2" };

export interface FenceRequest {
  /** The new owner. The file backend records it; the Ceph backend needs no record (the blocklist fences). */
  readonly self: Owner;
  /**
   * RBD client addresses that are ours and must survive (our own running qemu during a re-fence);
   * empty when we do not run the MN-VM yet, so every client of the image is foreign.
   */
  readonly keepAddresses?: readonly string[];
}

export interface FenceResult {
  /** The users that were cut off (blocklisted and/or had their lock broken, or lost the lease). */
  readonly fenced: readonly ImageUser[];
  /** Users still present after the fence: only the kept ones. */
  readonly remaining: readonly ImageUser[];
  readonly durationMs: number;
}

export interface StorageHealth {
  /** `HEALTH_OK`, `HEALTH_WARN`, `HEALTH_ERR` for Ceph; `OK` or `ERR` for a shared folder. */
  readonly status: string;
  /** One line per problem, e.g. `OSD_DOWN: 1 osds down`. */
  readonly checks: readonly string[];
  /** Short facts for `zsha status`, e.g. `mons 3/3 in quorum`, `osds 9 up / 9 in / 9`. */
  readonly summary: readonly string[];
}

export interface ReadProbe {
  readonly bytes: number;
  readonly latencyMs: number;
  /** What was read, e.g. `rbd_data.1023e8ea84f8.0000000000000000` or the file path. */
  readonly target: string;
}

export interface ImageStore {
  readonly kind: "ceph" | "file";
  check(): Promise<ImageCheck>;
  describeDisk(): DiskSource;
  /**
   * Makes sure no writer other than the kept ones can write to the image, then confirms it.
   * Idempotent: fencing an unused image just confirms it is unused.
   */
  fence(req: FenceRequest): Promise<FenceResult>;
  /**
   * Takes ownership for a normal start (no fence needed). Ceph: nothing to do (qemu takes the exclusive
   * lock; safety comes from `fence`). File: takes the lease, or `lock-held` while another node's is live.
   */
  claim(self: Owner): Promise<void>;
  /**
   * Owner heartbeat. File: renews the lease, or rejects `fenced` when a newer owner took it — the caller
   * must then destroy its MN-VM at once. Ceph: nothing to renew.
   */
  renew(self: Owner): Promise<void>;
  /** Gives ownership up after a clean stop (File: removes our lease). Never removes someone else's. */
  release(self: Owner): Promise<void>;
  health(): Promise<StorageHealth>;
  /** A real read of the image's data from this node, timed. */
  readProbe(): Promise<ReadProbe>;
}

export type ImageErrorCode =
  | "image-missing"
  | "pool-missing"
  | "permission-denied"
  | "monitors-unreachable"
  | "timeout"
  | "command-failed"
  | "bad-output"
  | "fence-incomplete"
  | "lock-held"
  | "fenced"
  | "stale-epoch";

export class ImageError extends Error {
  override readonly name = "ImageError";
  readonly code: ImageErrorCode;
  /** The command that failed, without secrets (keyrings are paths, never keys). */
  readonly command: string | undefined;
  /** Its stderr, last lines, for the log. */
  readonly detail: string | undefined;

  constructor(
    code: ImageErrorCode,
    message: string,
    extra: { command?: string; detail?: string; cause?: unknown } = {},
  ) {
    super(message, extra.cause === undefined ? undefined : { cause: extra.cause });
    this.code = code;
    this.command = extra.command;
    this.detail = extra.detail;
  }
}

export function isImageError(err: unknown, code?: ImageErrorCode): err is ImageError {
  return err instanceof ImageError && (code === undefined || err.code === code);
}
