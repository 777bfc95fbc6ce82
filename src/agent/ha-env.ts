// The HA agent's real environment: the system clock, the KV client, the hypervisor driver, the image store of
// the cluster config stored in the KV (rebuilt when it changes), host probes and the MN-VM launcher.

import { execa } from "execa";
import { type Config, parseConfig } from "../config/index.js";
import type { NodeName } from "../config/types.js";
import { HaAgent } from "../ha/agent.js";
import {
  DEFAULT_TIMING,
  type HaClock,
  type HaEnv,
  type HaKv,
  type HaLogger,
  type HaTiming,
} from "../ha/env.js";
import { KEYS } from "../ha/records.js";
import { cephSecretUuid } from "../hypervisor/domain-xml.js";
import type { Hypervisor } from "../hypervisor/hypervisor.js";
import { prepareMnvmStart } from "../hypervisor/mnvm.js";
import { imageStoreFromConfig } from "../image/from-config.js";
import { ImageError, type ImageStore } from "../image/image-store.js";

export const systemClock: HaClock = {
  now: () => performance.now(),
  wallMs: () => Date.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** The cluster config as stored in the KV, re-read periodically; undefined until one is stored. */
export class ConfigTracker {
  private raw: string | undefined;
  private parsed: Config | undefined;

  constructor(
    private readonly kv: HaKv,
    private readonly log: HaLogger,
    /** Told of each new valid config (after it is current); its failure is logged, never thrown. */
    private readonly onChange?: (c: Config) => Promise<void>,
  ) {}

  current(): Config | undefined {
    return this.parsed;
  }

  async refresh(): Promise<void> {
    const e = await this.kv.get(KEYS.config);
    const raw = e ? new TextDecoder().decode(e.value) : undefined;
    if (raw === this.raw) return;
    this.raw = raw;
    if (raw === undefined) {
      this.parsed = undefined;
      return;
    }
    const r = parseConfig(JSON.parse(raw), { allowSingleNode: true });
    if (!r.ok) {
      this.log("error", { problems: r.problems.map((p) => p.message) }, "ha.config-invalid");
      return;
    }
    this.parsed = r.config;
    this.log("info", { type: r.config.Type, nodes: r.config.Node.length }, "ha.config-loaded");
    await this.onChange?.(r.config).catch((e: Error) =>
      this.log("warn", { err: e.message }, "ha.config-change-action-failed"),
    );
  }
}

/** An ImageStore that follows the stored config: built on first use, rebuilt when the config changes. */
export class ConfigBoundImageStore implements ImageStore {
  private built: { config: Config; store: ImageStore } | undefined;

  constructor(
    private readonly config: ConfigTracker,
    private readonly clusterId: string,
  ) {}

  private store(): ImageStore {
    const c = this.config.current();
    if (!c) throw new ImageError("command-failed", "no cluster config is stored yet (zsha import-config)");
    if (this.built?.config !== c)
      this.built = {
        config: c,
        store: imageStoreFromConfig(c, { cephSecretUuid: cephSecretUuid(this.clusterId) }),
      };
    return this.built.store;
  }

  get kind(): "ceph" | "file" {
    return this.config.current()?.Type === "CephConf" ? "ceph" : "file";
  }
  check: ImageStore["check"] = () => this.store().check();
  describeDisk: ImageStore["describeDisk"] = () => this.store().describeDisk();
  fence: ImageStore["fence"] = (r) => this.store().fence(r);
  claim: ImageStore["claim"] = (s) => this.store().claim(s);
  renew: ImageStore["renew"] = (s) => this.store().renew(s);
  release: ImageStore["release"] = (s) => this.store().release(s);
  health: ImageStore["health"] = () => this.store().health();
  readProbe: ImageStore["readProbe"] = () => this.store().readProbe();
}

export interface HaAgentOptions {
  readonly node: string;
  readonly clusterId: string;
  readonly agentVersion: string;
  readonly kv: HaKv;
  readonly hypervisor: Hypervisor;
  readonly log: HaLogger;
  /** Where each node writes the MN-VM's cloud-init seed ISO. */
  readonly seedDir: string;
  /** Migration URI of a node, from its IP and name (e.g. `qemu+tcp://{ip}/system`). */
  readonly migrationUri: string;
  /** Peers heard from recently, by name. */
  readonly peers: () => Record<string, boolean>;
  /** The hypervisor is the simulated driver (no guest boots, so no cloud-init seed is written). */
  readonly simulated?: boolean;
  readonly timing?: Partial<HaTiming>;
}

function timingFrom(c: Config | undefined, override: Partial<HaTiming> = {}): HaTiming {
  const t = c?.Timing;
  return {
    ...DEFAULT_TIMING,
    ...(t
      ? {
          nodeLeaseSeconds: Math.max(1, Math.round(t.NodeLeaseMs / 1000)),
          ownerLeaseSeconds: Math.max(1, Math.round(t.OwnerLeaseMs / 1000)),
          fenceMarginMs: t.FenceMarginMs,
          shutdownTimeoutMs: t.ShutdownTimeoutMs,
        }
      : {}),
    ...override,
  };
}

/** Builds the HA agent of this node; it waits for a cluster config in the KV before acting. */
export function haAgent(o: HaAgentOptions): { agent: HaAgent; config: ConfigTracker } {
  // Every node keeps its MN-VM seed ISO ready for the current config, not only the one starting it: a live
  // migration target must have the cdrom's file at the same path before the MN-VM arrives.
  const config = new ConfigTracker(o.kv, o.log, async (c) => {
    if (o.simulated) return;
    const plan = await prepareMnvmStart({
      config: c,
      node: o.node as NodeName,
      clusterId: o.clusterId,
      seedDir: o.seedDir,
    });
    o.log("info", { path: plan.seedIsoPath }, "ha.seed-prepared");
  });
  const env: HaEnv = {
    node: o.node,
    agentVersion: o.agentVersion,
    clock: systemClock,
    kv: o.kv,
    hypervisor: o.hypervisor,
    image: new ConfigBoundImageStore(config, o.clusterId),
    probes: {
      async qemuRunning(domain) {
        const r = await execa("pgrep", ["-f", `guest=${domain}`], { reject: false, timeout: 2000 });
        return r.exitCode === 0;
      },
      peers: o.peers,
    },
    launcher: {
      get domainName() {
        return config.current()?.DomainName ?? "zsha-mnvm";
      },
      async domainXml(configJson) {
        const r = parseConfig(JSON.parse(new TextDecoder().decode(configJson)), { allowSingleNode: true });
        if (!r.ok)
          throw new Error(`the stored config is invalid: ${r.problems.map((p) => p.message).join("; ")}`);
        const plan = await prepareMnvmStart(
          { config: r.config, node: o.node as NodeName, clusterId: o.clusterId, seedDir: o.seedDir },
          // A simulated hypervisor boots no guest: no seed ISO to write (and no genisoimage needed).
          ...(o.simulated ? [async () => {}] : []),
        );
        return plan.domainXml;
      },
      migrationUri(node) {
        const n = config.current()?.Node.find((x) => x.endsWith(` ${node}`));
        const ip = n?.split(" ")[0] ?? node;
        return o.migrationUri.replace("{ip}", ip).replace("{node}", node);
      },
    },
    log: o.log,
    get timing() {
      return timingFrom(config.current(), o.timing);
    },
  };
  const agent = new HaAgent(env);
  return { agent, config };
}
