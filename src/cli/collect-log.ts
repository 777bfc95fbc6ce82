// `zsha collect-log`: one tarball for a support case — this node's zsha logs, the cluster status and members,
// the cluster config — with every secret removed on the way in (keys, passwords, PEM blocks, keyrings).

import { execFileSync } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { hostname, tmpdir } from "node:os";
import { basename, join } from "node:path";

const PEM = /-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE REQUEST)-----[\s\S]*?-----END [A-Z ]*-----/g;
/** `key = AQD…` (cephx keyrings), `"password": "…"`, `password=…`, `secret: …`, `token …`. */
const ASSIGNMENT =
  /\b((?:[a-z_]*password|passwd|secret|token|key|private_key|keyring)["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;}"']+)/gi;
/** cephx keys standing alone (base64 of 40 bytes starting AQ). */
const CEPHX = /\bAQ[A-Za-z0-9+/]{38}==/g;

/** Removes secrets from text. Exported for its tests. */
export function scrub(text: string): string {
  return text
    .replace(PEM, "[REDACTED PEM BLOCK]")
    .replace(ASSIGNMENT, (_m, k: string) => `${k}"[REDACTED]"`)
    .replace(CEPHX, "[REDACTED CEPHX KEY]");
}

export interface CollectInput {
  readonly logDir: string;
  readonly output: string;
  readonly status: unknown;
  readonly statusText: string[];
  readonly members: unknown;
  readonly config: unknown;
}

/** Writes the tarball; returns its path and the files in it. */
export function collect(i: CollectInput): { path: string; files: string[] } {
  const stage = mkdtempSync(join(tmpdir(), "zsha-collect-"));
  const root = join(stage, `zsha-${hostname()}-${new Date().toISOString().replace(/[:.]/g, "-")}`);
  mkdirSync(join(root, "logs"), { recursive: true });
  try {
    const files: string[] = [];
    const put = (rel: string, text: string) => {
      writeFileSync(join(root, rel), scrub(text));
      files.push(rel);
    };
    put("status.txt", `${i.statusText.join("\n")}\n`);
    put("status.json", `${JSON.stringify(i.status, null, 2)}\n`);
    put("members.json", `${JSON.stringify(i.members, null, 2)}\n`);
    put("config.json", `${JSON.stringify(i.config, null, 2)}\n`);
    if (existsSync(i.logDir)) {
      for (const f of readdirSync(i.logDir)) {
        const p = join(i.logDir, f);
        if (!statSync(p).isFile()) continue;
        if (/\.(gz|zst)$/.test(f)) {
          // Rotated and compressed: copied as they are would bypass the scrub — decompress, scrub, keep.
          const text = execFileSync(f.endsWith(".gz") ? "zcat" : "zstdcat", [p], {
            maxBuffer: 1 << 30,
          }).toString();
          put(join("logs", f.replace(/\.(gz|zst)$/, "")), text);
        } else if (/keyring|\.key$|\.pem$/.test(f)) {
        } else {
          put(join("logs", basename(f)), readFileSync(p, "utf8"));
        }
      }
    } else {
      put("logs/README.txt", `no log folder at ${i.logDir} on this node\n`);
    }
    execFileSync("tar", ["-czf", i.output, "-C", stage, basename(root)]);
    return { path: i.output, files };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}
