// The nodes' SSH host key fingerprints as first seen by `zsha install` (trust on first use, like OpenSSH's
// known_hosts): later runs refuse a node whose key changed unless the operator names it as replaced.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

export class HostKeys {
  private constructor(
    private readonly path: string,
    private readonly keys: Map<string, string>,
  ) {}

  static load(path: string): HostKeys {
    const keys = new Map<string, string>();
    let text = "";
    try {
      text = readFileSync(path, "utf8");
    } catch {
      // None recorded yet: a first install.
    }
    for (const line of text.split("\n")) {
      const [ip, fp] = line.trim().split(/\s+/);
      if (ip && fp && !ip.startsWith("#")) keys.set(ip, fp);
    }
    return new HostKeys(path, keys);
  }

  /**
   * Undefined when `fp` may be trusted for `ip` (known, or first seen, or its node was named as replaced),
   * else why not. Accepted keys are recorded (in memory until `save`).
   */
  check(ip: string, name: string, fp: string, replaced: boolean): string | undefined {
    const known = this.keys.get(ip);
    if (known === undefined || known === fp || replaced) {
      this.keys.set(ip, fp);
      return undefined;
    }
    return (
      `its SSH host key changed (recorded ${known}, now ${fp}): if ${name} was replaced, run install ` +
      `again with --replaced ${name}; otherwise someone may be intercepting the connection`
    );
  }

  text(): string {
    return `# zsha: SSH host keys of the cluster's nodes (ip fingerprint)\n${[...this.keys]
      .map(([ip, fp]) => `${ip} ${fp}`)
      .join("\n")}\n`;
  }

  save(): void {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    writeFileSync(this.path, this.text(), { mode: 0o600 });
  }
}
