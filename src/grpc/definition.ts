// From a protobuf-es service descriptor to what grpc-js needs: method paths and (de)serializers, plus
// the types that map each method of a generated service to its handler and client shapes.
import {
  type DescMessage,
  type DescMethod,
  type DescService,
  fromBinary,
  type Message,
  type MessageShape,
  toBinary,
} from "@bufbuild/protobuf";
import type { GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";

/** One method of a generated service, as `GenService<S>` describes it. */
export type MethodShape = GenServiceMethods[string];
export type Input<M extends MethodShape> = MessageShape<M["input"]>;
export type Output<M extends MethodShape> = MessageShape<M["output"]>;

/**
 * The method names of S that this adapter serves and calls. Client streaming is left out: nothing in
 * zsha uses it, and grpc-js answers such methods with UNIMPLEMENTED.
 */
export type SupportedMethods<S extends GenServiceMethods> = {
  [K in keyof S]: S[K]["methodKind"] extends "client_streaming" ? never : K;
}[keyof S];

/** The HTTP/2 path grpc uses for a method: `/package.Service/Method`. */
export function methodPath(method: DescMethod): string {
  return `/${method.parent.typeName}/${method.name}`;
}

export function isSupported(method: DescMethod): boolean {
  return method.methodKind !== "client_streaming";
}

/** A grpc-js service definition for a protobuf-es service, keyed by each method's `localName`. */
export function serviceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, MethodDefinition<Message, Message>> = {};
  for (const method of service.methods) definition[method.localName] = methodDefinition(method);
  return definition;
}

export function methodDefinition(method: DescMethod): MethodDefinition<Message, Message> {
  return {
    path: methodPath(method),
    requestStream: method.methodKind === "client_streaming" || method.methodKind === "bidi_streaming",
    responseStream: method.methodKind === "server_streaming" || method.methodKind === "bidi_streaming",
    requestSerialize: serializer(method.input),
    requestDeserialize: deserializer(method.input),
    responseSerialize: serializer(method.output),
    responseDeserialize: deserializer(method.output),
    originalName: method.localName,
  };
}

function serializer(schema: DescMessage): (message: Message) => Buffer {
  return (message) => {
    const bytes = toBinary(schema, message);
    // A view on the same memory: grpc-js wants a Buffer, and copying every message would be waste.
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(schema: DescMessage): (bytes: Buffer) => Message {
  return (bytes) => fromBinary(schema, bytes);
}
