import { create, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  CodecError,
  decodeEntry,
  encodeEntry,
  messageFromProto,
  messageToProto,
} from "../../src/codec/raft.js";
import * as pb from "../../src/gen/zsha/raft/v1/raft_pb.js";
import { EntryType, index, MessageType, message, nodeId, term } from "../../src/raft/index.js";

describe("raft codec", () => {
  it("round-trips entries of both types", () => {
    for (const type of [EntryType.Normal, EntryType.ConfChange]) {
      const e = { term: term(7), index: index(42), type, data: new Uint8Array([1, 2, 3]) };
      expect(decodeEntry(encodeEntry(e))).toEqual(e);
    }
  });

  it("round-trips a message with entries, and a snapshot message with its data supplied apart", () => {
    const m = message({
      type: MessageType.App,
      from: nodeId("a"),
      to: nodeId("b"),
      term: term(3),
      logTerm: term(2),
      index: index(10),
      commit: index(9),
      entries: [{ term: term(3), index: index(11), type: EntryType.Normal, data: new Uint8Array([9]) }],
      context: new Uint8Array([5]),
    });
    expect(messageFromProto(messageToProto(m))).toEqual(m);
    const snap = {
      meta: {
        index: index(100),
        term: term(4),
        confState: { voters: [nodeId("a"), nodeId("b")], learners: [nodeId("c")] },
      },
      data: new Uint8Array([7, 7]),
    };
    const sm = message({
      type: MessageType.Snap,
      from: nodeId("a"),
      to: nodeId("c"),
      term: term(4),
      snapshot: snap,
    });
    const wire = messageToProto(sm);
    expect(toBinary(pb.MessageSchema, wire).length).toBeLessThan(100); // the data is not inside
    expect(messageFromProto(wire, snap.data)).toEqual(sm);
    expect(() => messageFromProto(wire)).toThrow(CodecError);
  });

  it("refuses unknown message types and entry types, and indexes beyond 2^53", () => {
    expect(() => messageFromProto(create(pb.MessageSchema, { type: "Bogus" }))).toThrow(
      /unknown message type 'Bogus'/,
    );
    expect(() =>
      decodeEntry(toBinary(pb.EntrySchema, create(pb.EntrySchema, { type: 7 as pb.EntryType }))),
    ).toThrow(/unknown entry type 7/);
    expect(() => decodeEntry(toBinary(pb.EntrySchema, create(pb.EntrySchema, { index: 1n << 60n })))).toThrow(
      /beyond 2\^53/,
    );
  });
});
