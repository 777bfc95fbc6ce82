/**
 * Terse constructors for hand-made KV histories: times in milliseconds; `end` null means the client never
 * learned the outcome (timed out, connection lost), which the checker treats as possibly applied.
 */
import { type ClientId, type KvOperation, type KvOutput, UNKNOWN } from "../support/linearizability/index.js";

type Span = readonly [start: number, end: number | null];

function operation(
  client: ClientId,
  input: KvOperation["input"],
  [start, end]: Span,
  output: KvOutput,
): KvOperation {
  return end === null
    ? { client, input, callAt: start, output: UNKNOWN, returnAt: Number.POSITIVE_INFINITY }
    : { client, input, callAt: start, output, returnAt: end };
}

export const put = (client: ClientId, key: string, value: string, span: Span, prev?: string | null) =>
  operation(
    client,
    { op: "put", key, value },
    span,
    prev === undefined ? { op: "put" } : { op: "put", prev },
  );

export const get = (client: ClientId, key: string, value: string | null, span: Span, version?: number) =>
  operation(
    client,
    { op: "get", key },
    span,
    version === undefined ? { op: "get", value } : { op: "get", value, version },
  );

export const del = (client: ClientId, key: string, span: Span, deleted?: number) =>
  operation(
    client,
    { op: "delete", key },
    span,
    deleted === undefined ? { op: "delete" } : { op: "delete", deleted },
  );

export const cas = (
  client: ClientId,
  key: string,
  expected: string | null,
  value: string,
  ok: boolean,
  span: Span,
) => operation(client, { op: "cas", key, expect: { value: expected }, value }, span, { op: "cas", ok });

export const casVersion = (
  client: ClientId,
  key: string,
  version: number,
  value: string,
  ok: boolean,
  span: Span,
) => operation(client, { op: "cas", key, expect: { version }, value }, span, { op: "cas", ok });
