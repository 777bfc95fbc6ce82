// The cluster's X.509 material, made with the openssl CLI (present wherever Ceph and libvirt are): one CA
// per cluster, one certificate per node naming it (CN and DNS SAN = node name, IP SAN = its address), used
// both as server and client certificate for the agents' mutual TLS (src/transport/tls.ts).
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";

export interface Pem {
  readonly key: string;
  readonly cert: string;
}

const KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
const DAYS = "36500"; // the cluster's lifetime: nodes have no ACME; rotation is a re-install

async function inTemp<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "zsha-certs-"));
  try {
    return await f(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function openssl(args: string[]): Promise<void> {
  const r = await execa("openssl", args, { reject: false });
  if (r.exitCode !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr.trim().split("\n").pop()}`);
}

export function createCa(clusterId: string): Promise<Pem> {
  return inTemp(async (d) => {
    await openssl([
      "req",
      "-x509",
      ...KEY,
      "-keyout",
      join(d, "ca.key"),
      "-out",
      join(d, "ca.crt"),
      "-days",
      DAYS,
      "-subj",
      `/CN=zsha cluster ${clusterId}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    return {
      key: await readFile(join(d, "ca.key"), "utf8"),
      cert: await readFile(join(d, "ca.crt"), "utf8"),
    };
  });
}

/** A key and certificate for node `name` at `ip`, signed by `ca`. */
export function issueNodeCert(ca: Pem, name: string, ip: string): Promise<Pem> {
  return inTemp(async (d) => {
    await writeFile(join(d, "ca.key"), ca.key, { mode: 0o600 });
    await writeFile(join(d, "ca.crt"), ca.cert);
    await writeFile(
      join(d, "ext"),
      [
        `subjectAltName=DNS:${name},IP:${ip}`,
        "basicConstraints=critical,CA:FALSE",
        "keyUsage=critical,digitalSignature,keyEncipherment",
        "extendedKeyUsage=serverAuth,clientAuth",
        "",
      ].join("\n"),
    );
    await openssl([
      "req",
      ...KEY,
      "-keyout",
      join(d, "n.key"),
      "-out",
      join(d, "n.csr"),
      "-subj",
      `/CN=${name}`,
    ]);
    await openssl([
      "x509",
      "-req",
      "-in",
      join(d, "n.csr"),
      "-CA",
      join(d, "ca.crt"),
      "-CAkey",
      join(d, "ca.key"),
      "-set_serial",
      `0x${Buffer.from(randomBytes(16)).toString("hex")}`,
      "-days",
      DAYS,
      "-extfile",
      join(d, "ext"),
      "-out",
      join(d, "n.crt"),
    ]);
    return { key: await readFile(join(d, "n.key"), "utf8"), cert: await readFile(join(d, "n.crt"), "utf8") };
  });
}

/** Whether `cert` was issued by `ca` (a node keeps its certificate across re-installs when it was). */
export async function issuedBy(ca: Pem, cert: string): Promise<boolean> {
  return inTemp(async (d) => {
    await writeFile(join(d, "ca.crt"), ca.cert);
    await writeFile(join(d, "n.crt"), cert);
    const r = await execa("openssl", ["verify", "-CAfile", join(d, "ca.crt"), join(d, "n.crt")], {
      reject: false,
    });
    return r.exitCode === 0;
  });
}

/** An ed25519 key pair in OpenSSH format, for the cluster's own root SSH access between nodes. */
export function createSshKey(comment: string): Promise<{ privateKey: string; publicKey: string }> {
  return inTemp(async (d) => {
    const r = await execa(
      "ssh-keygen",
      ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", join(d, "k")],
      {
        reject: false,
      },
    );
    if (r.exitCode !== 0) throw new Error(`ssh-keygen failed: ${r.stderr.trim()}`);
    return {
      privateKey: await readFile(join(d, "k"), "utf8"),
      publicKey: (await readFile(join(d, "k.pub"), "utf8")).trim(),
    };
  });
}
