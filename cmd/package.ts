// `npm run package -- --out DIR`: builds the package `zsha install` copies to every node (src/install/package.ts)
// and prints where it is, its size and its sha256.

import { parseArgs } from "node:util";
import { packageSelf } from "../src/install/package.js";

let out: string;
try {
  const { values } = parseArgs({ options: { out: { type: "string", short: "o" } }, strict: true });
  if (!values.out) throw new Error("--out DIR is required (the folder the tarball is written to)");
  out = values.out;
} catch (e) {
  console.error(`package: ${(e as Error).message}`);
  process.exit(2);
}

try {
  const p = await packageSelf({ outDir: out, log: (line) => console.error(line) });
  console.log(p.tarball);
  console.log(`${p.bytes} bytes (${(p.bytes / 2 ** 20).toFixed(1)} MiB)`);
  console.log(`sha256 ${p.sha256}`);
  console.log(`zsha ${p.version}, commit ${p.commit}`);
} catch (e) {
  console.error(`package: ${(e as Error).message}`);
  process.exit(1);
}
