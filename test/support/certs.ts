// Throwaway X.509 material for TLS tests, made with the openssl CLI: a CA, and certificates it issues for
// names of the test's choosing (CN plus DNS subjectAltNames). Everything lives in the folder given.
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface KeyPair {
  readonly key: Buffer;
  readonly cert: Buffer;
}

const KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });

export class TestCa {
  private constructor(
    private readonly dir: string,
    private readonly name: string,
    /** PEM of the CA certificate. */
    readonly cert: Buffer,
  ) {}

  /** A new self-signed CA named `name`, its files under `dir`. */
  static create(dir: string, name: string): TestCa {
    const at = (file: string) => join(dir, `${name}.${file}`);
    openssl(
      "req",
      "-x509",
      ...KEY,
      "-keyout",
      at("key"),
      "-out",
      at("crt"),
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
    );
    return new TestCa(dir, name, readFileSync(at("crt")));
  }

  /** A key and a certificate signed by this CA with subject CN `cn` and the DNS names `dns` as SANs. */
  issue(cn: string, dns: readonly string[] = []): KeyPair {
    const base = join(this.dir, `${this.name}-${cn}`);
    openssl("req", ...KEY, "-keyout", `${base}.key`, "-out", `${base}.csr`, "-subj", `/CN=${cn}`);
    const ext = dns.length > 0 ? ["-extfile", `${base}.ext`] : [];
    if (dns.length > 0)
      writeFileSync(`${base}.ext`, `subjectAltName=${dns.map((d) => `DNS:${d}`).join(",")}\n`);
    openssl(
      "x509",
      "-req",
      "-in",
      `${base}.csr`,
      "-CA",
      join(this.dir, `${this.name}.crt`),
      "-CAkey",
      join(this.dir, `${this.name}.key`),
      "-CAcreateserial",
      "-out",
      `${base}.crt`,
      "-days",
      "1",
      ...ext,
    );
    return { key: readFileSync(`${base}.key`), cert: readFileSync(`${base}.crt`) };
  }
}
