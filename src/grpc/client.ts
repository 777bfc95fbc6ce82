// Calling a protobuf-es described service through grpc-js: unary calls are promises, server streams are
// async iterables, bidi streams are a send/end/cancel object with an async iterable of responses.
import { create, type DescMethod, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import * as grpc from "@grpc/grpc-js";
import {
  type MethodShape,
  methodDefinition,
  methodPath,
  type Output,
  type SupportedMethods,
} from "./definition.js";
import { Code, fromServiceError, RpcError } from "./errors.js";
import { Inbox, whenWritable } from "./streams.js";

export interface CallOptions {
  /** Time the whole call may take, in milliseconds from now; the call fails with DEADLINE_EXCEEDED after. */
  deadlineMs?: number;
  /** Aborting it cancels the call; the call then fails with CANCELLED. */
  signal?: AbortSignal;
  metadata?: grpc.Metadata;
}

export interface ClientOptions {
  /** Largest message accepted from the server; a larger one fails the call with RESOURCE_EXHAUSTED. */
  maxReceiveMessageBytes?: number;
  /** Largest message this client sends; a larger one fails the call with RESOURCE_EXHAUSTED. */
  maxSendMessageBytes?: number;
  /** Any other grpc-js channel option (keepalive, authority override for TLS, ...). */
  channelOptions?: grpc.ChannelOptions;
}

/** One open bidirectional stream. */
export interface BidiCall<Req, Res> {
  /**
   * Queues a request. Resolves at once while grpc-js's send buffer has room, else once it drains, so a
   * sender that awaits each send goes no faster than the connection. Rejects if the call is over.
   */
  send(request: Req): Promise<void>;
  /** Tells the server no more requests will come (half-close); responses keep arriving. */
  end(): void;
  /** Cancels the call: the server's signal fires and `responses` fails with CANCELLED. */
  cancel(): void;
  /** The responses, iterable once; it throws the RpcError if the call fails. Leaving it early cancels. */
  readonly responses: AsyncIterable<Res>;
}

type RequestInit<M extends MethodShape> = MessageInitShape<M["input"]>;

export type ClientMethod<M extends MethodShape> = M["methodKind"] extends "unary"
  ? (request: RequestInit<M>, options?: CallOptions) => Promise<Output<M>>
  : M["methodKind"] extends "server_streaming"
    ? (request: RequestInit<M>, options?: CallOptions) => AsyncIterable<Output<M>>
    : M["methodKind"] extends "bidi_streaming"
      ? (options?: CallOptions) => BidiCall<RequestInit<M>, Output<M>>
      : never;

/** A typed client: one function per method, named by its `localName`, plus `close()`. */
export type Client<S extends GenServiceMethods> = { [K in SupportedMethods<S>]: ClientMethod<S[K]> } & {
  /** Closes the channel if this client created it; a channel passed in stays open for its owner. */
  close(): void;
};

/** A client on an existing channel (shared by several services; its owner closes it). */
export function createClient<S extends GenServiceMethods>(
  service: GenService<S>,
  channel: grpc.Channel,
): Client<S>;
/**
 * A client with its own channel to `address`: `host:port`, or `unix:/path/to/socket` for a unix socket.
 * `credentials` are grpc-js's: `grpc.credentials.createInsecure()` or `grpc.credentials.createSsl(...)`.
 */
export function createClient<S extends GenServiceMethods>(
  service: GenService<S>,
  address: string,
  credentials: grpc.ChannelCredentials,
  options?: ClientOptions,
): Client<S>;
export function createClient<S extends GenServiceMethods>(
  service: GenService<S>,
  target: string | grpc.Channel,
  credentials?: grpc.ChannelCredentials,
  options: ClientOptions = {},
): Client<S> {
  const ownChannel = typeof target === "string";
  const channel = ownChannel ? openChannel(target, credentials, options) : target;
  // The address and credentials are unused when grpc-js is handed the channel to use.
  const client = new grpc.Client("unused", grpc.credentials.createInsecure(), { channelOverride: channel });
  const methods: Record<string, unknown> = {};
  for (const method of service.methods) {
    if (method.methodKind === "client_streaming") continue;
    if (method.localName === "close") {
      throw new Error(
        `createClient: ${methodPath(method)} clashes with the client's close(); rename the rpc`,
      );
    }
    methods[method.localName] = callMethod(client, method);
  }
  methods.close = () => {
    if (ownChannel) channel.close();
  };
  return methods as Client<S>;
}

function openChannel(
  address: string,
  credentials: grpc.ChannelCredentials | undefined,
  options: ClientOptions,
): grpc.Channel {
  if (!credentials) throw new Error(`createClient: credentials are required to connect to ${address}`);
  const channelOptions: grpc.ChannelOptions = { ...options.channelOptions };
  if (options.maxReceiveMessageBytes !== undefined) {
    channelOptions["grpc.max_receive_message_length"] = options.maxReceiveMessageBytes;
  }
  if (options.maxSendMessageBytes !== undefined) {
    channelOptions["grpc.max_send_message_length"] = options.maxSendMessageBytes;
  }
  return new grpc.Channel(address, credentials, channelOptions);
}

function callMethod(client: grpc.Client, method: DescMethod): unknown {
  const def = methodDefinition(method);
  const request = (init: unknown) => create(method.input, init as Message);
  switch (method.methodKind) {
    case "unary":
      return (init: unknown, options: CallOptions = {}) =>
        new Promise<Message>((resolve, reject) => {
          const { signal } = options;
          if (signal?.aborted) {
            reject(cancelledBySignal());
            return;
          }
          const call = client.makeUnaryRequest(
            def.path,
            def.requestSerialize,
            def.responseDeserialize,
            request(init),
            options.metadata ?? new grpc.Metadata(),
            grpcCallOptions(options),
            (err, response) => {
              signal?.removeEventListener("abort", cancel);
              if (err) reject(fromServiceError(err));
              else resolve(response!);
            },
          );
          const cancel = () => call.cancel();
          signal?.addEventListener("abort", cancel, { once: true });
        });
    case "server_streaming":
      return (init: unknown, options: CallOptions = {}) => {
        const call = client.makeServerStreamRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          request(init),
          options.metadata ?? new grpc.Metadata(),
          grpcCallOptions(options),
        );
        return track(call, options.signal).responses;
      };
    case "bidi_streaming":
      return (options: CallOptions = {}): BidiCall<unknown, Message> => {
        const call = client.makeBidiStreamRequest(
          def.path,
          def.requestSerialize,
          def.responseDeserialize,
          options.metadata ?? new grpc.Metadata(),
          grpcCallOptions(options),
        );
        const { responses, over, outcome } = track(call, options.signal);
        let ended = false;
        return {
          responses,
          async send(init) {
            if (ended) throw new Error(`${def.path}: send() after end()`);
            if (!over.aborted && !call.write(request(init))) await whenWritable(call, over);
            if (over.aborted) throw outcome() ?? new RpcError(Code.CANCELLED, `${def.path} is already over`);
          },
          end() {
            if (ended) return;
            ended = true;
            call.end();
          },
          cancel: () => call.cancel(),
        };
      };
    default:
      throw new Error(`${def.path} is ${method.methodKind}, which this adapter does not call`);
  }
}

/**
 * Watches a streaming call to its end: its responses as an Inbox, `over` firing when the status arrives,
 * and `outcome()` giving the RpcError it failed with (undefined while running or after OK).
 */
function track(
  call: grpc.ClientReadableStream<Message> | grpc.ClientDuplexStream<Message, Message>,
  signal: AbortSignal | undefined,
): { responses: Inbox<Message>; over: AbortSignal; outcome: () => RpcError | undefined } {
  const responses = new Inbox<Message>(call, () => call.cancel());
  const over = new AbortController();
  let failure: RpcError | undefined;
  const cancel = () => call.cancel();
  // grpc-js emits a failure twice, as 'error' then as 'status'; 'status' alone settles everything. The
  // listener keeps an unobserved failure from crashing the process as an unhandled 'error' event.
  call.on("error", () => {});
  call.on("status", (status: grpc.StatusObject) => {
    signal?.removeEventListener("abort", cancel);
    if (status.code !== Code.OK) failure = new RpcError(status.code, status.details, status.metadata);
    over.abort();
    responses.finish(failure);
  });
  if (signal?.aborted) call.cancel();
  else signal?.addEventListener("abort", cancel, { once: true });
  return { responses, over: over.signal, outcome: () => failure };
}

function grpcCallOptions(options: CallOptions): grpc.CallOptions {
  return options.deadlineMs === undefined ? {} : { deadline: Date.now() + options.deadlineMs };
}

function cancelledBySignal(): RpcError {
  return new RpcError(Code.CANCELLED, "the call was cancelled before it started");
}
