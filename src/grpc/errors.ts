// Errors that cross the wire: an RPC fails with a gRPC status code and one sentence, nothing else.
import { Metadata, type ServiceError, status } from "@grpc/grpc-js";

/** The gRPC status codes, re-exported so that callers need not import grpc-js to name one. */
export { status as Code } from "@grpc/grpc-js";

/** The code's canonical name ("NOT_FOUND"), or "CODE_<n>" for a number outside the enum. */
export function codeName(code: status): string {
  return status[code] ?? `CODE_${code}`;
}

/**
 * An RPC failure with a gRPC status code. Server handlers throw it to choose the status the client sees;
 * clients receive it for every failed call, whatever the cause (status from the server, deadline,
 * cancellation, connection loss, message size limits).
 */
export class RpcError extends Error {
  override readonly name = "RpcError";

  constructor(
    readonly code: status,
    message: string,
    /** Trailing metadata that came with the status, if any. */
    readonly metadata: Metadata = new Metadata(),
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  override toString(): string {
    return `${codeName(this.code)}: ${this.message}`;
  }
}

/** The status object grpc-js sends for a failed server call. */
export interface WireStatus {
  code: status;
  details: string;
  metadata: Metadata;
}

/**
 * What a value thrown by a handler becomes on the wire: an RpcError keeps its code and sentence; anything
 * else is a bug in the server and becomes INTERNAL with its message, so the client learns something
 * without the server leaking a stack trace.
 */
export function toWireStatus(err: unknown): WireStatus {
  if (err instanceof RpcError) return { code: err.code, details: err.message, metadata: err.metadata };
  const details = err instanceof Error ? err.message : String(err);
  return { code: status.INTERNAL, details, metadata: new Metadata() };
}

/** Turns grpc-js's client-side error (a status with an Error's shape) into an RpcError. */
export function fromServiceError(err: ServiceError): RpcError {
  return new RpcError(err.code, err.details, err.metadata ?? new Metadata(), { cause: err });
}
