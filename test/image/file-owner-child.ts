/**
 * A FileConf owner in its own process, for file.test.ts: claims the lease, renews it every `leaseMs / 3`
 * on the real clock, prints `claimed` once and `fenced` when a renewal is refused, then exits 3.
 * Usage: file-owner-child.ts FOLDER NODE EPOCH LEASE_MS
 */
import { FileImageStore } from "../../src/image/file.js";
import { isImageError } from "../../src/image/image-store.js";

const [folder, node, epoch, leaseMs] = process.argv.slice(2);
const self = { node: node!, epoch: Number(epoch) };
const store = new FileImageStore({ folder: folder!, leaseMs: Number(leaseMs), maxClockSkewMs: 50 });
await store.claim(self);
console.log("claimed");
for (;;) {
  await new Promise((r) => setTimeout(r, Number(leaseMs) / 3));
  try {
    await store.renew(self);
  } catch (err) {
    if (!isImageError(err, "fenced")) throw err;
    console.log("fenced");
    process.exit(3);
  }
}
