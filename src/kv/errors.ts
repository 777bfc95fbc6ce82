// Errors of the KV store: a gRPC status code and one sentence naming the field. Validation throws them
// before a request is proposed; apply returns them (never throws) for a command that cannot take effect.
import { Code, RpcError } from "../grpc/errors.js";
import type { Revision } from "./types.js";

export { Code };

export class KvError extends Error {
  override readonly name: string = "KvError";

  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }

  /** The same failure as the error a gRPC handler throws. */
  toRpcError(): RpcError {
    return new RpcError(this.code, this.message, undefined, { cause: this });
  }
}

/**
 * A watch (or compaction) asked for history that compaction already discarded. `oldest` is the oldest
 * revision still available: what WatchResponse.compact_revision reports so the client can resync.
 */
export class CompactedError extends KvError {
  override readonly name: string = "CompactedError";

  constructor(
    what: string,
    requested: Revision,
    readonly oldest: Revision,
  ) {
    super(
      Code.OUT_OF_RANGE,
      `${what}: revision ${requested} has been compacted; the oldest available revision is ${oldest}`,
    );
  }
}
