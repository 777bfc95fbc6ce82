/**
 * Builds the node's ImageStore from the cluster config (SPEC §2): `CephConf` → RBD image
 * `PoolName/ImageName` on `MonAddrs`; `FileConf` → `ImageFolder/ImageName` with the owner lease of
 * `Timing.OwnerLeaseMs`. The config was validated already; a missing field here is a bug, said plainly.
 */
import type { Config } from "../config/index.js";
import { CephImageStore } from "./ceph.js";
import { FileImageStore, type WallClock } from "./file.js";
import type { ImageStore } from "./image-store.js";

/** zsha's cephx user (`client.zsha`, created by `zsha install`). */
export const ZSHA_CEPH_USER = "zsha";
/** Where Ceph's tools look for client.zsha's keyring by default; `zsha install` writes it there. */
export const DEFAULT_ZSHA_KEYRING = "/etc/ceph/ceph.client.zsha.keyring";

export interface ImageStoreEnv {
  /** UUID of the libvirt secret holding client.zsha's key (the one the domain XML references). */
  readonly cephSecretUuid: string;
  readonly keyring?: string;
  readonly cephConf?: string;
  readonly timeoutMs?: number;
  readonly clock?: WallClock;
}

export function imageStoreFromConfig(config: Config, env: ImageStoreEnv): ImageStore {
  if (config.Type === "CephConf") {
    if (!config.MonAddrs?.length || config.PoolName === undefined) {
      throw new Error(
        "a CephConf config needs MonAddrs and PoolName (the config check should have refused it)",
      );
    }
    return new CephImageStore({
      monAddrs: config.MonAddrs,
      pool: config.PoolName,
      image: config.ImageName,
      user: ZSHA_CEPH_USER,
      keyring: env.keyring ?? DEFAULT_ZSHA_KEYRING,
      secretUuid: env.cephSecretUuid,
      ...(env.cephConf === undefined ? {} : { confPath: env.cephConf }),
      ...(env.timeoutMs === undefined ? {} : { timeoutMs: env.timeoutMs }),
    });
  }
  if (config.ImageFolder === undefined) {
    throw new Error("a FileConf config needs ImageFolder (the config check should have refused it)");
  }
  return new FileImageStore({
    folder: config.ImageFolder,
    image: config.ImageName,
    leaseMs: config.Timing.OwnerLeaseMs,
    ...(env.timeoutMs === undefined ? {} : { timeoutMs: env.timeoutMs }),
    ...(env.clock === undefined ? {} : { clock: env.clock }),
  });
}
