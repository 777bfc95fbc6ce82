/**
 * CephImageStore against a real single-host Ceph (mon + memstore OSD on 127.0.0.1, cephx on), started
 * once for this file. Proves the property fencing exists for: after `fence`, the old writer's next write
 * fails (ESHUTDOWN) while a new writer's succeeds — and that the exclusive lock alone would not have done it.
 */

import { mkdtemp, rm, truncate, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CephImageStore, type CephImageStoreOptions } from "../../src/image/ceph.js";
import { isImageError } from "../../src/image/image-store.js";
import { type CephCluster, findFreePorts, startCeph } from "../support/ceph.js";
import { QemuIoWriter, type RbdTarget } from "./qemu-io-writer.js";

const POOL = "zstack";
const IMAGE = "mnvm.img";
const SECRET = "0b7c3f6e-4f5a-4c1e-9d55-6c3ad7d3f1a2";
const self = { node: "ceph-2", epoch: 7 };

let ceph: CephCluster;
let work: string;
let zshaKeyring: string;
let target: RbdTarget;
const writers: QemuIoWriter[] = [];

function store(over: Partial<CephImageStoreOptions> = {}): CephImageStore {
  return new CephImageStore({
    monAddrs: [ceph.monAddr],
    user: "zsha",
    keyring: zshaKeyring,
    pool: POOL,
    image: IMAGE,
    secretUuid: SECRET,
    ...over,
  });
}

function writer(): QemuIoWriter {
  const w = new QemuIoWriter(target);
  writers.push(w);
  return w;
}

/** The address of the client that appeared in `rbd status` since `before`. */
async function newWatcher(before: readonly string[]): Promise<string> {
  const users = (await store().check()).users;
  const fresh = users.filter((u) => u.kind === "watcher" && !before.includes(u.address));
  expect(fresh).toHaveLength(1);
  return fresh[0]!.address;
}

async function watcherAddrs(): Promise<string[]> {
  return (await store().check()).users.filter((u) => u.kind === "watcher").map((u) => u.address);
}

beforeAll(async () => {
  const t0 = Date.now();
  ceph = await startCeph({ pools: [POOL] });
  zshaKeyring = (await ceph.createRbdClient("zsha", POOL)).keyring;
  work = await mkdtemp(join(tmpdir(), "zsha-image-"));
  const src = join(work, "src.raw");
  await writeFile(src, "MNVM-BOOT-SECTOR");
  await truncate(src, 16 * 2 ** 20);
  await ceph.importImage(src, POOL, IMAGE);
  target = { pool: POOL, image: IMAGE, conf: ceph.conf, user: "zsha", keyring: zshaKeyring };
  console.log(`ceph test cluster ready in ${Date.now() - t0} ms`);
});

afterAll(async () => {
  await Promise.all(writers.map((w) => w.close()));
  await ceph?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

describe("CephImageStore on a real cluster", () => {
  it("checks the imported image: size, and nobody using it", async () => {
    const c = await store().check();
    expect(c).toEqual({ name: `${POOL}/${IMAGE}`, sizeBytes: 16 * 2 ** 20, users: [] });
  });

  it("describes the disk for the domain XML", () => {
    expect(store().describeDisk()).toEqual({
      type: "rbd",
      pool: POOL,
      image: IMAGE,
      monitors: [{ host: "127.0.0.1", port: ceph.ports.monV1 }],
      user: "zsha",
      secretUuid: SECRET,
    });
  });

  it("exclusive-lock alone does not fence: two writers both succeed (why fence must blocklist)", async () => {
    const a = writer();
    const b = writer();
    expect(await a.write(0, 4096, 0x11)).toEqual({ ok: true });
    expect(await b.write(4096, 4096, 0x22)).toEqual({ ok: true });
    expect(await a.write(8192, 4096, 0x33)).toEqual({ ok: true });
    await a.close();
    await b.close();
  });

  it("fence cuts a live writer off: its next write fails with ESHUTDOWN, a new writer's succeeds", async () => {
    const before = await watcherAddrs();
    const old = writer();
    expect(await old.write(0, 4096, 0xaa)).toEqual({ ok: true });
    const oldAddr = await newWatcher(before);
    const seen = await store().check();
    expect(seen.users.map((u) => [u.kind, u.address])).toEqual([
      ["watcher", oldAddr],
      ["lock", oldAddr],
    ]);
    expect(seen.users[1]!.lockId).toMatch(/^auto \d+$/);

    const result = await store().fence({ self });
    console.log(`fence of one writer took ${result.durationMs} ms`);
    expect(result.fenced.map((u) => [u.kind, u.address])).toEqual([
      ["watcher", oldAddr],
      ["lock", oldAddr],
    ]);
    expect(result.remaining).toEqual([]);
    expect(await ceph.ceph(["osd", "blocklist", "ls", "-f", "json"])).toContain(oldAddr);

    const after = await old.write(0, 4096, 0xbb);
    expect(after.ok).toBe(false);
    expect(after).toMatchObject({
      error: expect.stringContaining("Cannot send after transport endpoint shutdown"),
    });

    const fresh = writer();
    expect(await fresh.write(0, 4096, 0xcc)).toEqual({ ok: true });
    expect(await fresh.verify(0, 4096, 0xcc)).toEqual({ ok: true });
    // The old writer stays dead: retrying does not bring it back.
    expect((await old.write(4096, 4096, 0xbb)).ok).toBe(false);
    await fresh.close();
    await old.close();
  });

  it("fence keeps the caller's own client and cuts only the foreign one", async () => {
    const ours = writer();
    expect(await ours.write(0, 4096, 0x01)).toEqual({ ok: true });
    const ourAddr = await newWatcher([]);
    const foreign = writer();
    expect(await foreign.write(4096, 4096, 0x02)).toEqual({ ok: true });
    const foreignAddr = await newWatcher([ourAddr]);

    const result = await store().fence({ self, keepAddresses: [ourAddr] });
    expect(new Set(result.fenced.map((u) => u.address))).toEqual(new Set([foreignAddr]));
    expect(result.remaining.every((u) => u.address === ourAddr)).toBe(true);
    expect((await foreign.write(4096, 4096, 0x03)).ok).toBe(false);
    expect(await ours.write(8192, 4096, 0x04)).toEqual({ ok: true });
    expect(await ours.verify(8192, 4096, 0x04)).toEqual({ ok: true });
    await ours.close();
    await foreign.close();
  });

  it("fence of an unused image just confirms it is unused", async () => {
    const r = await store().fence({ self });
    expect(r).toMatchObject({ fenced: [], remaining: [] });
  });

  it("readProbe reads the image's first object without becoming a user of the image", async () => {
    const p = await store().readProbe();
    expect(p.target).toMatch(/^rbd_data\.[0-9a-f]+\.0000000000000000$/);
    expect(p.bytes).toBeGreaterThan(0);
    expect(p.latencyMs).toBeGreaterThan(0);
    expect((await store().check()).users).toEqual([]);
  });

  it("health parses ceph -s", async () => {
    const h = await store().health();
    expect(h.status).toMatch(/^HEALTH_(OK|WARN)$/);
    expect(h.summary).toEqual([
      "mons 1/1 in quorum",
      "osds 1 up / 1 in / 1 total",
      expect.stringMatching(/^pgs \d+$/),
    ]);
  });

  it("a missing image is image-missing", async () => {
    await expect(store({ image: "nope.img" }).check()).rejects.toSatisfy(
      (e) => isImageError(e, "image-missing") && /"nope.img" does not exist/.test(e.message),
    );
  });

  it("a wrong pool is pool-missing", async () => {
    await expect(store({ pool: "zstack2" }).check()).rejects.toSatisfy(
      (e) => isImageError(e, "pool-missing") && /"zstack2" does not exist/.test(e.message),
    );
  });

  it("a wrong key is permission-denied, quickly", async () => {
    const bad = join(work, "bad.keyring");
    await writeFile(bad, "[client.zsha]\n\tkey = AQBkq0BnAAAAABAAx3wtQd2S8tZ5Gk7JZ9Q0Ag==\n");
    const t0 = Date.now();
    await expect(store({ keyring: bad }).check()).rejects.toSatisfy((e) =>
      isImageError(e, "permission-denied"),
    );
    expect(Date.now() - t0).toBeLessThan(3_000);
  });

  it("a user without caps on the pool is permission-denied", async () => {
    const other = await ceph.createRbdClient("other", "otherpool");
    await expect(store({ user: "other", keyring: other.keyring }).check()).rejects.toSatisfy((e) =>
      isImageError(e, "permission-denied"),
    );
  });

  it("unreachable monitors are monitors-unreachable within the call's timeout", async () => {
    const nobody = await findFreePorts(1);
    const t0 = Date.now();
    await expect(
      store({ monAddrs: [`127.0.0.1:${nobody.monV1}`], timeoutMs: 3_000 }).check(),
    ).rejects.toSatisfy(
      (e) => isImageError(e, "monitors-unreachable") && /no Ceph monitor answered within 2 s/.test(e.message),
    );
    expect(Date.now() - t0).toBeLessThan(4_500);
    await expect(
      store({ monAddrs: [`127.0.0.1:${nobody.monV1}`], timeoutMs: 3_000 }).health(),
    ).rejects.toSatisfy((e) => isImageError(e, "monitors-unreachable"));
  });
});

describe("CephImageStore when the OSDs stop answering", () => {
  it("a call that hangs inside Ceph is a timeout within the call's bound", async () => {
    ceph.signal("osd", "SIGSTOP");
    try {
      const t0 = Date.now();
      await expect(store({ timeoutMs: 3_000 }).check()).rejects.toSatisfy((e) => isImageError(e, "timeout"));
      expect(Date.now() - t0).toBeLessThan(4_500);
    } finally {
      ceph.signal("osd", "SIGCONT");
    }
    // The cluster answers again once the OSD runs.
    expect((await store().check()).sizeBytes).toBe(16 * 2 ** 20);
  });
});
