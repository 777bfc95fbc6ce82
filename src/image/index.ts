/** The MN-VM's disk: check it, describe it for the domain, fence a previous owner (image-store.ts). */

export { CephImageStore, type CephImageStoreOptions } from "./ceph.js";
export { type CephClientOptions, type CephTerms, cephTerms, monArg } from "./ceph-cli.js";
export { FileImageStore, type FileImageStoreOptions, systemClock, type WallClock } from "./file.js";
export {
  DEFAULT_ZSHA_KEYRING,
  type ImageStoreEnv,
  imageStoreFromConfig,
  ZSHA_CEPH_USER,
} from "./from-config.js";
export {
  type DiskSource,
  type FenceRequest,
  type FenceResult,
  type ImageCheck,
  ImageError,
  type ImageErrorCode,
  type ImageStore,
  type ImageUser,
  isImageError,
  type Owner,
  type ReadProbe,
  type StorageHealth,
} from "./image-store.js";
