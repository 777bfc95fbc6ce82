/**
 * @zsha/libvirt: zsha's own Node-API binding of libvirt.
 *
 *   const conn = await open("qemu:///system", { timeoutMs: 10_000 });
 *   const dom = await conn.defineDomain(xml);
 *   dom.on((ev) => …);            // lifecycle, jobCompleted, migrationIteration
 *   await dom.start();
 *   await dom.migrateToURI3("qemu+tcp://10.88.0.2/system", { persistentOnDest: true, undefineSource: true });
 *   await conn.close();           // the process can exit now
 *
 * Every call returns a promise, takes `{ timeoutMs }`, and rejects only with a `LibvirtError`.
 */
export * from "./connection.js";
export * from "./constants.js";
export { Domain, type MigrateParams } from "./domain.js";
export * from "./errors.js";
export { libvirtLibraryVersion } from "./native.js";
export * from "./types.js";
