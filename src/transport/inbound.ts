// The receiving end of peer streams: checks the hello (cluster, addressee, membership, certificate
// identity), decodes each message, reassembles snapshots and acknowledges them on the response stream.
import type { MessageInitShape } from "@bufbuild/protobuf";
import { CodecError, messageFromProto } from "../codec/raft.js";
import type * as pb from "../gen/zsha/raft/v1/raft_pb.js";
import { type CallContext, Code, RpcError } from "../grpc/index.js";
import { type Message, MessageType, type NodeId, nodeId } from "../raft/index.js";
import { SnapshotAssembly } from "./frames.js";
import { errorFields, type Log } from "./log.js";
import { identityError } from "./tls.js";

/** A caller that connects but never says who it is does not hold a handler for long. */
const HELLO_TIMEOUT_MS = 10_000;

type ResponseInit = MessageInitShape<typeof pb.StreamResponseSchema>;

/** What the receiving end needs from its Transport. */
export interface InboundHost {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly requireCertificate: boolean;
  readonly maxSnapshotBytes: number;
  readonly log: Log;
  isPeer(id: NodeId): boolean;
  deliver(m: Message): void;
  /**
   * Records the stream from `from`, replacing (and ending) an older one from the same peer. Its signal
   * fires when the stream must end: a newer stream came, the peer was removed, or the transport closes.
   */
  attach(from: NodeId): { signal: AbortSignal; release(): void };
  /** Fires when the transport closes. */
  readonly closing: AbortSignal;
}

export async function* serveStream(
  requests: AsyncIterable<pb.StreamRequest>,
  ctx: CallContext,
  host: InboundHost,
): AsyncGenerator<ResponseInit> {
  const frames = requests[Symbol.asyncIterator]();
  const helloDue = AbortSignal.timeout(HELLO_TIMEOUT_MS);
  const first = await nextUnless(frames, AbortSignal.any([host.closing, helloDue]));
  if (!first) {
    if (helloDue.aborted && !host.closing.aborted) {
      host.log("warn", { addr: ctx.peer }, "transport.hello_missing");
      throw new RpcError(Code.DEADLINE_EXCEEDED, `no hello arrived within ${HELLO_TIMEOUT_MS} ms`);
    }
    return;
  }
  const from = checkHello(first, ctx, host);
  const stream = host.attach(from);
  host.log("debug", { peer: from, addr: ctx.peer }, "transport.inbound_open");
  const snapshot = new SnapshotAssembly(host.maxSnapshotBytes);
  try {
    for (;;) {
      const request = await nextUnless(frames, stream.signal);
      if (!request) break;
      const frame = request.frame;
      if (frame.case === "message") {
        if (snapshot.busy) {
          throw refuse(host, from, Code.INVALID_ARGUMENT, "a message arrived in the middle of a snapshot");
        }
        deliver(host, from, decode(host, from, frame.value));
      } else if (frame.case === "snapshotChunk") {
        const whole = guard(host, from, () => snapshot.add(frame.value));
        if (!whole) continue;
        const m = decode(host, from, whole.message, whole.data);
        yield { frame: { case: "snapshotAck", value: takeSnapshot(host, from, m) } };
      } else if (frame.case === "hello") {
        throw refuse(host, from, Code.INVALID_ARGUMENT, "a second hello arrived on the stream");
      } else {
        throw refuse(host, from, Code.INVALID_ARGUMENT, "a frame arrived with nothing in it");
      }
    }
    if (stream.signal.aborted) throw stream.signal.reason;
  } finally {
    stream.release();
    host.log("debug", { peer: from }, "transport.inbound_closed");
  }
}

function checkHello(request: pb.StreamRequest, ctx: CallContext, host: InboundHost): NodeId {
  const refuseHello = (code: Code, sentence: string, fields: object = {}) => {
    host.log("warn", { addr: ctx.peer, reason: sentence, ...fields }, "transport.stream_refused");
    return new RpcError(code, sentence);
  };
  if (request.frame.case !== "hello") {
    throw refuseHello(Code.INVALID_ARGUMENT, "the first frame of a peer stream must be a hello");
  }
  const hello = request.frame.value;
  if (hello.clusterId !== host.clusterId) {
    throw refuseHello(
      Code.FAILED_PRECONDITION,
      `cluster id '${hello.clusterId}' of the caller is not this member's cluster '${host.clusterId}'`,
      { peer: hello.from },
    );
  }
  if (hello.to !== host.selfId) {
    throw refuseHello(
      Code.FAILED_PRECONDITION,
      `the stream is addressed to '${hello.to}', but this member is '${host.selfId}'`,
      { peer: hello.from },
    );
  }
  const from = nodeId(hello.from);
  if (host.requireCertificate) {
    const wrong = identityError(ctx.peerCertificate, from);
    if (wrong) {
      throw refuseHello(Code.PERMISSION_DENIED, `the caller may not speak as '${from}': ${wrong.message}`, {
        peer: from,
      });
    }
  }
  if (!host.isPeer(from)) {
    throw refuseHello(Code.NOT_FOUND, `'${from}' is not a peer known to member '${host.selfId}'`, {
      peer: from,
    });
  }
  return from;
}

function decode(host: InboundHost, from: NodeId, p: pb.Message, snapshotData?: Uint8Array): Message {
  const m = guard(host, from, () => messageFromProto(p, snapshotData));
  if (m.from !== from || m.to !== host.selfId) {
    throw refuse(
      host,
      from,
      Code.INVALID_ARGUMENT,
      `a message from '${m.from}' to '${m.to}' arrived on the stream from '${from}' to '${host.selfId}'`,
    );
  }
  return m;
}

function deliver(host: InboundHost, from: NodeId, m: Message): void {
  try {
    host.deliver(m);
  } catch (err) {
    host.log("error", { peer: from, type: m.type, ...errorFields(err) }, "transport.deliver_failed");
  }
}

/** Hands a reassembled snapshot over and says whether that worked, for the SnapshotAck. */
function takeSnapshot(
  host: InboundHost,
  from: NodeId,
  m: Message,
): MessageInitShape<typeof pb.SnapshotAckSchema> {
  const index = BigInt(m.snapshot?.meta.index ?? 0);
  if (m.type !== MessageType.Snap) {
    throw refuse(
      host,
      from,
      Code.INVALID_ARGUMENT,
      `snapshot chunks carried a ${m.type} message, not a Snap`,
    );
  }
  try {
    host.deliver(m);
    host.log(
      "info",
      { peer: from, index: Number(index), bytes: m.snapshot?.data.length },
      "transport.snapshot_received",
    );
    return { index, ok: true };
  } catch (err) {
    host.log(
      "error",
      { peer: from, index: Number(index), ...errorFields(err) },
      "transport.snapshot_rejected",
    );
    return { index, ok: false, error: err instanceof Error ? err.message : String(err) };
  }
}

/** Runs a decoding step; a CodecError or a framing error ends the stream with that status, logged. */
function guard<T>(host: InboundHost, from: NodeId, step: () => T): T {
  try {
    return step();
  } catch (err) {
    if (err instanceof CodecError) throw refuse(host, from, Code.INVALID_ARGUMENT, err.message);
    if (err instanceof RpcError) throw refuse(host, from, err.code, err.message);
    throw err;
  }
}

function refuse(host: InboundHost, from: NodeId, code: Code, sentence: string): RpcError {
  host.log("warn", { peer: from, code, reason: sentence }, "transport.stream_broken");
  return new RpcError(code, sentence);
}

/** The next frame, or undefined once the stream ended or `stop` fired (whichever comes first). */
async function nextUnless<T>(frames: AsyncIterator<T>, stop: AbortSignal): Promise<T | undefined> {
  if (stop.aborted) return undefined;
  let onAbort: (() => void) | undefined;
  const stopped = new Promise<undefined>((resolve) => {
    onAbort = () => resolve(undefined);
    stop.addEventListener("abort", onAbort, { once: true });
  });
  try {
    const result = await Promise.race([frames.next(), stopped]);
    return result && !result.done ? result.value : undefined;
  } finally {
    if (onAbort) stop.removeEventListener("abort", onAbort);
  }
}
