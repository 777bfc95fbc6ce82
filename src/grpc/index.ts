// One small generic adapter between protobuf-es service descriptors and @grpc/grpc-js.
export { type BidiCall, type CallOptions, type Client, type ClientOptions, createClient } from "./client.js";
export { methodPath, serviceDefinition } from "./definition.js";
export { Code, codeName, RpcError } from "./errors.js";
export { addService, type CallContext, type ServeOptions, type ServiceImpl } from "./server.js";
