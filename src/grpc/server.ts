// Serving a protobuf-es described service with grpc-js: handlers are plain async functions and async
// generators; status codes, cancellation and stream flow control are handled here once.
import type { EventEmitter } from "node:events";
import type { PeerCertificate } from "node:tls";
import {
  create,
  type DescMessage,
  type DescMethod,
  type DescService,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type * as grpc from "@grpc/grpc-js";
import {
  type Input,
  isSupported,
  type MethodShape,
  methodPath,
  type SupportedMethods,
  serviceDefinition,
} from "./definition.js";
import { Code, RpcError, toWireStatus } from "./errors.js";
import { Inbox, whenWritable } from "./streams.js";

/** What a handler knows about the call besides its request. */
export interface CallContext {
  /** `/package.Service/Method`. */
  readonly method: string;
  readonly metadata: grpc.Metadata;
  /** The client's address as grpc-js reports it, e.g. `127.0.0.1:53412`. */
  readonly peer: string;
  /** The certificate the client presented over TLS, or undefined (no TLS, or no client certificate). */
  readonly peerCertificate: PeerCertificate | undefined;
  /**
   * Fires when the call ends early: the client cancelled, the deadline passed or the connection went
   * away. Its reason is an RpcError (CANCELLED or DEADLINE_EXCEEDED). Pass it on to anything slow.
   */
  readonly signal: AbortSignal;
}

type ResponseInit<M extends MethodShape> = MessageInitShape<M["output"]>;

export type UnaryHandler<M extends MethodShape> = (
  request: Input<M>,
  ctx: CallContext,
) => Promise<ResponseInit<M>>;
export type ServerStreamingHandler<M extends MethodShape> = (
  request: Input<M>,
  ctx: CallContext,
) => AsyncIterable<ResponseInit<M>>;
export type BidiStreamingHandler<M extends MethodShape> = (
  requests: AsyncIterable<Input<M>>,
  ctx: CallContext,
) => AsyncIterable<ResponseInit<M>>;

export type MethodHandler<M extends MethodShape> = M["methodKind"] extends "unary"
  ? UnaryHandler<M>
  : M["methodKind"] extends "server_streaming"
    ? ServerStreamingHandler<M>
    : M["methodKind"] extends "bidi_streaming"
      ? BidiStreamingHandler<M>
      : never;

/** The implementation of a generated service: one handler per method, named by its `localName`. */
export type ServiceImpl<S extends GenServiceMethods> = { [K in SupportedMethods<S>]: MethodHandler<S[K]> };

export interface ServeOptions {
  /**
   * Called for each handler failure that is not an RpcError (answered with INTERNAL): a bug worth a log
   * line on the server, since the client only sees the message.
   */
  onUnexpectedError?: (err: unknown, method: string) => void;
}

type AnyCall =
  | grpc.ServerUnaryCall<Message, Message>
  | grpc.ServerWritableStream<Message, Message>
  | grpc.ServerDuplexStream<Message, Message>;
type Produce = (ctx: CallContext) => AsyncIterable<unknown>;

/**
 * Registers `impl` for `service` on `server`. Each response a handler returns or yields may be a message
 * or a plain init object. A thrown RpcError becomes its status; anything else becomes INTERNAL.
 */
export function addService<S extends GenServiceMethods>(
  server: grpc.Server,
  service: GenService<S>,
  impl: ServiceImpl<S>,
  options: ServeOptions = {},
): void {
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const method of service.methods) {
    if (!isSupported(method)) continue;
    const handler: unknown = (impl as Record<string, unknown>)[method.localName];
    if (typeof handler !== "function") {
      throw new Error(`addService: impl.${method.localName} must be the handler of ${methodPath(method)}`);
    }
    handlers[method.localName] = serveMethod(method, handler.bind(impl), options);
  }
  server.addService(serviceDefinition(service as DescService), handlers);
}

// biome-ignore lint/suspicious/noExplicitAny: the handler's types were checked by ServiceImpl<S>.
type AnyHandler = (...args: any[]) => any;

function serveMethod(method: DescMethod, handler: AnyHandler, options: ServeOptions): grpc.UntypedHandleCall {
  const path = methodPath(method);
  const report = (err: unknown) => {
    if (!(err instanceof RpcError)) options.onUnexpectedError?.(err, path);
  };
  switch (method.methodKind) {
    case "unary":
      return (call: grpc.ServerUnaryCall<Message, Message>, callback: grpc.sendUnaryData<Message>) => {
        const ctx = callContext(path, call);
        Promise.resolve()
          .then(() => handler(call.request, ctx))
          .then(
            (response) => callback(null, create(method.output, response)),
            (err: unknown) => {
              report(err);
              callback(toWireStatus(err));
            },
          );
      };
    case "server_streaming":
      return (call: grpc.ServerWritableStream<Message, Message>) =>
        sendResponses(call, path, method.output, (ctx) => handler(call.request, ctx), report);
    case "bidi_streaming":
      return (call: grpc.ServerDuplexStream<Message, Message>) => {
        const requests = new Inbox<Message>(call, () => {});
        call.on("end", () => requests.finish());
        sendResponses(
          call,
          path,
          method.output,
          (ctx) => {
            ctx.signal.addEventListener("abort", () => requests.finish(ctx.signal.reason));
            return handler(requests, ctx);
          },
          report,
        );
      };
    default:
      throw new Error(`${path} is ${method.methodKind}, which this adapter does not serve`);
  }
}

/**
 * Writes what the handler yields, waiting for 'drain' whenever grpc-js's buffer is full so that a slow
 * client slows the handler down instead of growing the server's memory. Ends with OK, or with the status
 * of what the handler threw; the messages written before are delivered first.
 */
function sendResponses(
  call: grpc.ServerWritableStream<Message, Message> | grpc.ServerDuplexStream<Message, Message>,
  path: string,
  schema: DescMessage,
  produce: Produce,
  report: (err: unknown) => void,
): void {
  const ctx = callContext(path, call);
  const run = async () => {
    for await (const response of produce(ctx)) {
      if (ctx.signal.aborted) return;
      if (!call.write(create(schema, response as Message))) await whenWritable(call, ctx.signal);
    }
  };
  run().then(
    () => {
      if (!ctx.signal.aborted) call.end();
    },
    (err: unknown) => {
      // After a cancellation nobody is listening; the handler failing because of it is not news.
      if (ctx.signal.aborted) return;
      report(err);
      // grpc-js's own 'error' listener on server streams records the status, then ends the stream.
      call.emit("error", toWireStatus(err));
    },
  );
}

function callContext(path: string, call: AnyCall): CallContext {
  const controller = new AbortController();
  const abort = () => controller.abort(endedEarly(call.getDeadline()));
  if (call.cancelled) abort();
  else (call as EventEmitter).once("cancelled", abort);
  return {
    method: path,
    metadata: call.metadata,
    peer: call.getPeer(),
    peerCertificate: call.getAuthContext().sslPeerCertificate,
    signal: controller.signal,
  };
}

/**
 * grpc-js reports a passed deadline and a client's cancel alike as 'cancelled'; the deadline tells them apart.
 * The server's deadline is the client's timeout counted from when the request *arrived*, so the client's own
 * deadline (and its cancel) comes up to a transit time earlier: a cancel that close to it is the deadline
 * (seen in CI under load: a 150 ms call's cancel judged a client cancel).
 */
const DEADLINE_SLACK_MS = 250;

function endedEarly(deadline: grpc.Deadline): RpcError {
  const at = deadline instanceof Date ? deadline.getTime() : deadline;
  if (Number.isFinite(at) && Date.now() >= at - DEADLINE_SLACK_MS) {
    return new RpcError(Code.DEADLINE_EXCEEDED, "the deadline of the call passed");
  }
  return new RpcError(Code.CANCELLED, "the client cancelled the call");
}
