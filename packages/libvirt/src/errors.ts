import { ERROR_CODE_NAMES, ERROR_DOMAIN_NAMES } from "./error-codes.js";

/**
 * Where an error came from:
 * - `libvirt`: libvirt refused or failed; `code`/`domain` are its virErrorNumber/virErrorDomain.
 * - `timeout`: the call did not answer within its timeout; its outcome is unknown.
 * - `wedged`: an earlier call on this connection is stuck past its timeout; the connection's worker
 *   thread is busy with it, so this call was refused at once. Close and reopen the connection.
 * - `closed`: the connection is closed (or was closed while the call was pending).
 * - `invalid-argument`: the binding refused the arguments before calling libvirt.
 * - `internal`: a bug in the binding.
 */
export type LibvirtErrorKind = "libvirt" | "timeout" | "wedged" | "closed" | "invalid-argument" | "internal";

export class LibvirtError extends Error {
  override readonly name = "LibvirtError";
  readonly kind: LibvirtErrorKind;
  /** libvirt's virErrorNumber (0 when the error is the binding's own). */
  readonly code: number;
  /** virErrorNumber's name, e.g. `VIR_ERR_NO_DOMAIN`. */
  readonly codeName: string;
  /** libvirt's virErrorDomain: which part of libvirt raised it. */
  readonly domain: number;
  readonly domainName: string;
  /** The API call that failed, e.g. `virDomainCreate`. */
  readonly call: string;

  constructor(kind: LibvirtErrorKind, call: string, message: string, code = 0, domain = 0) {
    super(`${call}: ${message}`);
    this.kind = kind;
    this.call = call;
    this.code = code;
    this.domain = domain;
    this.codeName = ERROR_CODE_NAMES[code] ?? `VIR_ERR_${code}`;
    this.domainName = ERROR_DOMAIN_NAMES[domain] ?? `VIR_FROM_${domain}`;
  }
}

export function isLibvirtError(err: unknown, codeName?: string): err is LibvirtError {
  return err instanceof LibvirtError && (codeName === undefined || err.codeName === codeName);
}

const KINDS = new Set<string>(["libvirt", "timeout", "wedged", "closed", "invalid-argument", "internal"]);

/** Turns what the native side rejected with (an Error carrying kind/code/domain) into a LibvirtError. */
export function fromNative(call: string, err: unknown): LibvirtError {
  if (err instanceof LibvirtError) return err;
  if (err instanceof Error) {
    const e = err as Error & { kind?: unknown; code?: unknown; domain?: unknown };
    const kind =
      typeof e.kind === "string" && KINDS.has(e.kind) ? (e.kind as LibvirtErrorKind) : "invalid-argument";
    return new LibvirtError(
      kind,
      call,
      e.message,
      typeof e.code === "number" ? e.code : 0,
      typeof e.domain === "number" ? e.domain : 0,
    );
  }
  return new LibvirtError("internal", call, String(err));
}
