// Loads the compiled addon and describes its (untyped) surface. Only connection.ts and domain.ts use it.
import { createRequire } from "node:module";
import { versionString } from "./constants.js";

export type NativeParamType = "string" | "ullong" | "int" | "boolean";
export type NativeParam = [name: string, type: NativeParamType, value: string | number | boolean];
export type NativeStats = Record<string, number | string | boolean>;
export interface NativeDomainId {
  name: string;
  uuid: string;
}

export type NativeEvent =
  | { type: "lifecycle"; domain: NativeDomainId; event: number; detail: number }
  | { type: "jobCompleted"; domain: NativeDomainId; stats: NativeStats }
  | { type: "migrationIteration"; domain: NativeDomainId; iteration: number }
  | { type: "close"; reason: number };

/** Every method's last argument is the call's timeout in ms (see core.h for what it governs natively). */
export interface NativeConnection {
  open(
    uri: string,
    readOnly: boolean,
    keepAliveIntervalSec: number,
    keepAliveCount: number,
    t: number,
  ): Promise<void>;
  close(t: number): Promise<void>;
  abandon(): void;
  hostname(t: number): Promise<string>;
  versions(t: number): Promise<{ library: number; daemon: number; hypervisor: number; type: string }>;
  defineXML(xml: string, t: number): Promise<NativeDomainId>;
  lookupByName(name: string, t: number): Promise<NativeDomainId>;
  lookupByUUID(uuid: string, t: number): Promise<NativeDomainId>;
  listDomains(flags: number, t: number): Promise<NativeDomainId[]>;
  domainCreate(uuid: string, flags: number, t: number): Promise<void>;
  domainShutdown(uuid: string, flags: number, t: number): Promise<void>;
  domainDestroy(uuid: string, flags: number, t: number): Promise<void>;
  domainUndefine(uuid: string, flags: number, t: number): Promise<void>;
  domainState(uuid: string, t: number): Promise<{ state: number; reason: number }>;
  domainXML(uuid: string, flags: number, t: number): Promise<string>;
  domainJobStats(uuid: string, flags: number, t: number): Promise<{ type: number; stats: NativeStats }>;
  domainAbortJob(uuid: string, t: number): Promise<void>;
  domainSetUserPassword(
    uuid: string,
    user: string,
    password: string,
    flags: number,
    t: number,
  ): Promise<void>;
  domainAgentCommand(
    uuid: string,
    command: string,
    agentTimeoutSec: number,
    flags: number,
    t: number,
  ): Promise<string>;
  domainMigrateToURI3(
    uuid: string,
    dconnuri: string,
    params: NativeParam[],
    flags: number,
    t: number,
  ): Promise<void>;
  secretDefineXML(xml: string, t: number): Promise<string>;
  secretSetValue(uuid: string, value: Buffer, t: number): Promise<void>;
  secretUndefine(uuid: string, t: number): Promise<void>;
  /** Test hook: occupies the worker thread for `ms` without calling libvirt. */
  sleep(ms: number, t: number): Promise<void>;
}

export interface NativeModule {
  NativeConnection: new (onEvent: (event: NativeEvent) => void) => NativeConnection;
  /** The libvirt library this addon was loaded with (packed version). */
  libraryVersion: number;
}

const ADDON = "../build/Release/zsha_libvirt.node";

/** Loads the addon; throws with a sentence saying how to get it when it was not built. */
export function loadNative(): NativeModule {
  const require = createRequire(import.meta.url);
  try {
    return require(ADDON) as NativeModule;
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(
      `the libvirt addon is not available (${why}); install libvirt-dev, pkg-config and a C++ compiler, then run npm ci`,
      { cause: err },
    );
  }
}

/**
 * Loads the native addon now (rather than at the first `open`) and returns the libvirt library version
 * it runs with. Throws an Error saying how to get the addon when it was not built.
 */
export function libvirtLibraryVersion(): string {
  return versionString(loadNative().libraryVersion);
}
