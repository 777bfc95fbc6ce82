/**
 * The validators for Ceph's JSON, on outputs captured from Ceph 16.2 (and the older lock-list shape), and
 * the monitor-address rule. The real-cluster suite (ceph.test.ts) exercises them end to end.
 */
import { describe, expect, it } from "vitest";
import { cephTerms, firstJsonValue, monArg } from "../../src/image/ceph-cli.js";
import {
  parseBlocklist,
  parseCephStatus,
  parseRbdInfo,
  parseRbdLocks,
  parseRbdStatus,
} from "../../src/image/ceph-json.js";
import { isImageError } from "../../src/image/image-store.js";

const cmd = "rbd test";

describe("Ceph JSON validators", () => {
  it("rbd status: the client as Ceph 16 prints it (a number) and as older releases do (a name)", () => {
    const v = {
      watchers: [
        { address: "127.0.0.1:0/3173838419", client: 4174, cookie: 1 },
        { address: "10.0.0.2:0/42", client: "client.4200", cookie: 2 },
      ],
    };
    expect(parseRbdStatus(v, cmd)).toEqual([
      { address: "127.0.0.1:0/3173838419", client: "client.4174" },
      { address: "10.0.0.2:0/42", client: "client.4200" },
    ]);
  });

  it("rbd lock ls: list (Ceph 16) and object keyed by id (older)", () => {
    const list = [{ id: "auto 1405", locker: "client.4174", address: "127.0.0.1:0/1" }];
    expect(parseRbdLocks(list, cmd)).toEqual(list);
    expect(parseRbdLocks({ "auto 1405": { locker: "client.4174", address: "127.0.0.1:0/1" } }, cmd)).toEqual(
      list,
    );
    expect(parseRbdLocks([], cmd)).toEqual([]);
  });

  it("bad shapes are bad-output naming the field", () => {
    expect(() => parseRbdStatus({ watchers: [{ client: 1 }] }, cmd)).toThrow(
      'rbd test printed JSON whose field "watchers[0].address" is not a string',
    );
    expect(() => parseRbdInfo({ name: "x", size: "big" }, cmd)).toThrow('field "size" is not a number');
    try {
      parseRbdLocks("nope", cmd);
      expect.unreachable();
    } catch (e) {
      expect(isImageError(e, "bad-output")).toBe(true);
    }
  });

  it("ceph -s: health checks become one line each; usage is optional (no manager)", () => {
    const s = parseCephStatus(
      {
        health: {
          status: "HEALTH_WARN",
          checks: { OSD_DOWN: { severity: "HEALTH_WARN", summary: { message: "1 osds down", count: 1 } } },
        },
        quorum_names: ["a", "b"],
        monmap: { num_mons: 3 },
        osdmap: { num_osds: 9, num_up_osds: 8, num_in_osds: 9 },
        pgmap: { num_pgs: 128, bytes_used: 10, bytes_total: 100 },
      },
      "ceph status",
    );
    expect(s).toEqual({
      status: "HEALTH_WARN",
      checks: ["OSD_DOWN: 1 osds down"],
      monsInQuorum: 2,
      mons: 3,
      osds: 9,
      osdsUp: 8,
      osdsIn: 9,
      pgs: 128,
      bytesUsed: 10,
      bytesTotal: 100,
    });
  });

  it("osd blocklist ls prints two JSON lists on 16.2.x (addresses, then ranges)", () => {
    const out = '\n[{"addr":"127.0.0.1:0/123","until":"2026-11-22T21:10:01.839139+0000"}][]';
    expect(parseBlocklist(firstJsonValue(out), cmd)).toEqual(["127.0.0.1:0/123"]);
    expect(firstJsonValue('{"a":"]}"}')).toEqual({ a: "]}" });
    expect(() => firstJsonValue("[1] garbage")).toThrow();
  });
});

describe("monArg", () => {
  it("says the protocol: 3300 is msgr2, other ports v1, explicit prefixes kept", () => {
    expect(monArg(["10.0.0.1:6789", "10.0.0.2:3300", "v2:10.0.0.3:3301", " 10.0.0.4:16789 "])).toBe(
      "v1:10.0.0.1:6789,v2:10.0.0.2:3300,v2:10.0.0.3:3301,v1:10.0.0.4:16789",
    );
  });
});

describe("cephTerms", () => {
  it("says blocklist from Ceph 16 (Pacific) on, blacklist before", () => {
    expect(
      cephTerms("ceph version 16.2.15 (618f440892089921c3e944a991122ddc44e60516) pacific (stable)\n"),
    ).toEqual({
      release: 16,
      blocklist: "blocklist",
      breakLockOption: "rbd_blocklist_on_break_lock",
    });
    expect(
      cephTerms("ceph version 14.2.22 (ca74598065096e6fcbd8433c8779a2be0c889351) nautilus (stable)"),
    ).toMatchObject({
      release: 14,
      blocklist: "blacklist",
      breakLockOption: "rbd_blacklist_on_break_lock",
    });
    expect(() => cephTerms("rbd: command not found")).toThrow(/cannot read the Ceph release/);
  });
});
