// The node-local side of HA (Proxmox's "local resource manager"): takes ownership when assigned, fences the
// previous owner at the storage level, starts the MN-VM, keeps the owner lease alive and destroys its own
// MN-VM when it cannot (self-fencing), restarts the MN-VM after an in-guest shutdown, runs live migrations
// away from here, stops it on request, and destroys any copy it runs without owning it.

import type { DomainStatus } from "../hypervisor/hypervisor.js";
import type { HaEnv, TxnCompare } from "./env.js";
import {
  type Assignment,
  configHash,
  DEFAULT_MNVM_ROOT_PASSWORD,
  encodeRecord,
  type HistoryRecord,
  KEYS,
  type Migration,
  type Owner,
  type PasswordReset,
} from "./records.js";
import { type ClusterView, loadView } from "./view.js";

interface Ownership {
  readonly epoch: number;
  readonly lease: bigint;
  /** The owner record as stored (compared byte for byte in our Txns). */
  readonly record: Owner;
  /** Monotonic time at which the last keep-alive that succeeded was SENT (DESIGN.md: self-fencing clock). */
  lastRenewalSentAt: number;
  /** Starts attempted in this ownership (bounded). */
  attempts: number;
  /** We stopped it on purpose (operator stop): do not treat as an in-guest shutdown. */
  stopping: boolean;
}

export type VmState = "running" | "stopped" | "absent" | "unknown";

class OwnershipEnded extends Error {
  constructor() {
    super("the ownership ended before the MN-VM was started");
  }
}

export class LocalManager {
  private own: Ownership | undefined;
  private migrating = false;
  private failures: { atMs: number; reason: string }[] = [];
  /** Last view's global-maintenance flag: while frozen, nothing is started, stopped or fenced. */
  private frozen = false;
  private lastVm: VmState = "unknown";
  /** Whether the hypervisor answered the last state call (for the node report). */
  hypervisorOk: { value: boolean; atMs: number; error?: string } = { value: false, atMs: 0 };
  qemuRunning: { value: boolean; atMs: number } | undefined;
  /** The config bytes the last start here used (recorded with the start, for "restart pending"). */
  private startedWith: Uint8Array | undefined;
  private renewalsInFlight = 0;
  private lastRenewalSent = Number.NEGATIVE_INFINITY;
  /** Epochs this process fenced itself out of: never adopted again (the lease may still look alive). */
  private readonly selfFenced = new Set<number>();

  constructor(private readonly env: HaEnv) {}

  get ownedEpoch(): number | undefined {
    return this.own?.epoch;
  }

  recentFailures(): { atMs: number; reason: string }[] {
    const now = this.env.clock.wallMs();
    this.failures = this.failures.filter((f) => now - f.atMs <= this.env.timing.failureWindowMs);
    return this.failures;
  }

  vmState(): VmState {
    return this.lastVm;
  }

  // ---- the owner lease: renewal and self-fencing ---------------------------------------------------------

  /**
   * Called often (every ~100-200 ms): renews the owner lease about every ownerLease/5 and destroys the
   * MN-VM once no renewal that was sent in the last (TTL - margin) succeeded.
   */
  async watchdog(): Promise<void> {
    const own = this.own;
    if (!own) return;
    const env = this.env;
    const now = env.clock.now();
    if (!this.holdsLease(own) && !this.frozen) {
      env.log(
        "warn",
        { epoch: own.epoch, sinceRenewalMs: Math.round(now - own.lastRenewalSentAt) },
        "ha.self-fence",
      );
      this.own = undefined;
      this.selfFenced.add(own.epoch);
      await this.destroyVm("self-fence: the owner lease could not be renewed");
      return;
    }
    // One renewal every ownerLease/5, each on its own: a renewal stuck in a network blip must not hold back
    // the next one (SPEC §3a: brief blips never cause a failover).
    const interval = (env.timing.ownerLeaseSeconds * 1000) / 5;
    if (now - this.lastRenewalSent < interval || this.renewalsInFlight >= 4) return;
    this.lastRenewalSent = now;
    // Not awaited: the watchdog loop must keep judging the lease (and sending renewals) while this one hangs.
    void this.renew(own, now);
  }

  private async renew(own: Ownership, sentAt: number): Promise<void> {
    const env = this.env;
    this.renewalsInFlight++;
    try {
      const ttl = await env.kv.leaseKeepAlive(own.lease);
      if (ttl > 0 && this.own === own) own.lastRenewalSentAt = Math.max(own.lastRenewalSentAt, sentAt);
      if (ttl <= 0 && this.own === own) {
        env.log("warn", { epoch: own.epoch }, "ha.owner-lease-gone");
        this.own = undefined;
        if (!this.frozen) await this.destroyVm("the owner lease expired");
      }
    } catch (e) {
      env.log("debug", { err: (e as Error).message }, "ha.owner-renewal-failed");
    } finally {
      this.renewalsInFlight--;
    }
  }

  /** Whether a renewal of `own` sent within the last TTL - margin succeeded (DESIGN.md self-fencing rule). */
  private holdsLease(own: Ownership): boolean {
    const env = this.env;
    return (
      env.clock.now() - own.lastRenewalSentAt <=
      env.timing.ownerLeaseSeconds * 1000 - env.timing.fenceMarginMs
    );
  }

  // ---- one round -------------------------------------------------------------------------------------------

  async step(): Promise<void> {
    const env = this.env;
    const view = await loadView(env.kv);
    this.frozen = view.globalMaintenance?.enabled ?? false;
    const vm = await this.observeVm();
    if (this.frozen) {
      // HA is frozen: only re-attach to ownership after an agent restart, so the lease is kept alive.
      if (!this.own) await this.maybeAdopt(view, vm);
      return;
    }
    if (this.own) {
      await this.asOwner(view, vm);
      return;
    }
    if (await this.maybeAdopt(view, vm)) return;
    const a = view.assignment;
    const desiredRunning = (view.desired?.state ?? "running") === "running";
    if (
      a &&
      a.node === env.node &&
      a.epoch === view.epoch &&
      a.claimedAtMs === undefined &&
      a.failed === undefined &&
      !view.owner &&
      desiredRunning &&
      view.config
    ) {
      // Only while our libvirtd answers (it did in this round): a start on a hung daemon waits out its call
      // timeouts. Unclaimed, the assignment goes elsewhere once our report says so (or the claim times out).
      if (this.hypervisorOk.value) await this.claim(view, a);
      return;
    }
    // A copy running here that we do not own (we were fenced, deposed, or an old agent left it): kill it —
    // unless it is arriving here by a live migration of the current epoch (one of an older epoch was
    // overtaken by a new assignment, whose owner fences the image: that copy is stale).
    const m = view.migration;
    const incoming = m && m.to === env.node && m.state === "running" && m.epoch === view.epoch;
    if (vm === "running" && !incoming) {
      env.log("warn", { owner: view.owner?.node ?? null }, "ha.unowned-copy");
      await this.destroyVm("running here without ownership");
    }
  }

  /** Looks at the hypervisor once (the reporter's first report must not publish an unobserved state). */
  async observe(): Promise<void> {
    await this.observeVm();
  }

  private async observeVm(): Promise<VmState> {
    const env = this.env;
    let st: DomainStatus | undefined;
    try {
      st = await env.hypervisor.state(env.launcher.domainName, { timeoutMs: 5000 });
      this.hypervisorOk = { value: true, atMs: env.clock.wallMs() };
      this.qemuRunning = undefined;
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "no-domain") {
        this.hypervisorOk = { value: true, atMs: env.clock.wallMs() };
        this.lastVm = "absent";
        return this.lastVm;
      }
      this.hypervisorOk = { value: false, atMs: env.clock.wallMs(), error: (e as Error).message };
      // libvirtd does not answer: look at the qemu process itself before concluding anything (SPEC §3a).
      const qemu = await env.probes.qemuRunning(env.launcher.domainName).catch(() => false);
      this.qemuRunning = { value: qemu, atMs: env.clock.wallMs() };
      this.lastVm = qemu ? "running" : "unknown";
      return this.lastVm;
    }
    const running =
      st.state === "running" || st.state === "paused" || st.state === "blocked" || st.state === "shutdown";
    this.lastVm = running ? "running" : "stopped";
    return this.lastVm;
  }

  /** After an agent restart: the KV says we own it, or the MN-VM runs here with its epoch unchanged. */
  private async maybeAdopt(view: ClusterView, vm: VmState): Promise<boolean> {
    const env = this.env;
    const o = view.owner;
    if (o && o.node === env.node && o.epoch === view.epoch && !this.selfFenced.has(o.epoch)) {
      // Our previous life's lease: adopt it only once a renewal of it succeeded, timed from when it was sent.
      const sentAt = env.clock.now();
      const ttl = await env.kv.leaseKeepAlive(o.lease).catch(() => 0);
      if (ttl <= 0) return false;
      const record: Owner = { node: o.node, epoch: o.epoch, sinceMs: o.sinceMs };
      this.own = {
        epoch: o.epoch,
        lease: o.lease,
        record,
        lastRenewalSentAt: sentAt,
        attempts: 0,
        stopping: false,
      };
      env.log("info", { epoch: o.epoch, vm }, "ha.ownership-adopted");
      return true;
    }
    const a = view.assignment;
    if (
      !o &&
      vm === "running" &&
      a?.node === env.node &&
      a.epoch === view.epoch &&
      a.claimedAtMs !== undefined &&
      !a.failed &&
      !this.selfFenced.has(a.epoch)
    ) {
      // We still run it and nobody was assigned since: take the ownership back (same epoch).
      const lease = await env.kv.leaseGrant(env.timing.ownerLeaseSeconds);
      const sentAt = env.clock.now();
      const owner: Owner = { node: env.node, epoch: view.epoch, sinceMs: env.clock.wallMs() };
      const ok = await env.kv.txn(
        [
          { key: KEYS.epoch, target: "modRevision", op: "==", value: view.epochRevision },
          { key: KEYS.owner, target: "createRevision", op: "==", value: 0n },
        ],
        [{ put: { key: KEYS.owner, value: encodeRecord(owner), lease } }],
      );
      if (!ok) {
        await env.kv.leaseRevoke(lease).catch(() => {});
        return false;
      }
      this.own = {
        epoch: view.epoch,
        lease,
        record: owner,
        lastRenewalSentAt: sentAt,
        attempts: 0,
        stopping: false,
      };
      env.log("info", { epoch: view.epoch }, "ha.ownership-retaken");
      return true;
    }
    return false;
  }

  // ---- taking ownership and starting ---------------------------------------------------------------------

  private async claim(view: ClusterView, a: Assignment): Promise<void> {
    const env = this.env;
    const sentAt = env.clock.now();
    const lease = await env.kv.leaseGrant(env.timing.ownerLeaseSeconds);
    const owner: Owner = { node: env.node, epoch: a.epoch, sinceMs: env.clock.wallMs() };
    const claimed: Assignment = { ...a, claimedAtMs: env.clock.wallMs() };
    const ok = await env.kv.txn(
      [
        { key: KEYS.epoch, target: "modRevision", op: "==", value: view.epochRevision },
        { key: KEYS.owner, target: "createRevision", op: "==", value: 0n },
      ],
      [
        { put: { key: KEYS.owner, value: encodeRecord(owner), lease } },
        { put: { key: KEYS.assignment, value: encodeRecord(claimed) } },
      ],
    );
    if (!ok) {
      await env.kv.leaseRevoke(lease).catch(() => {});
      env.log("info", { epoch: a.epoch }, "ha.claim-lost");
      return;
    }
    this.own = {
      epoch: a.epoch,
      lease,
      record: owner,
      lastRenewalSentAt: sentAt,
      attempts: 0,
      stopping: false,
    };
    env.log("info", { epoch: a.epoch, kind: a.kind, reason: a.reason }, "ha.ownership-taken");
    if (a.kind === "migration" && (await this.observeVm()) === "running") {
      // It arrived here by live migration: nothing to fence (the source let go) and nothing to start.
      await this.record(a.epoch, "migration", a.reason);
      return;
    }
    const kind =
      a.reason === "initial start" ? "initial" : a.reason.startsWith("started by") ? "operator" : "failover";
    await this.start(view, kind, a.reason, true);
  }

  /** Fences every other writer of the image (when `fence`), then defines and starts the MN-VM here. */
  private async start(view: ClusterView, kind: string, reason: string, fence: boolean): Promise<boolean> {
    const env = this.env;
    const own = this.own;
    if (!own || !view.config) return false;
    let startOutcomeUnknown = false;
    for (;;) {
      own.attempts++;
      let startCalled = false;
      try {
        // Never fence (or start) on an ownership that ended: a stale owner would cut the real one off.
        if (this.own !== own || !this.holdsLease(own)) throw new OwnershipEnded();
        if (fence) {
          const r = await env.image.fence({ self: { node: env.node, epoch: own.epoch } });
          env.log(
            "info",
            { fenced: r.fenced.map((u) => u.address), ms: Math.round(r.durationMs) },
            "ha.fenced",
          );
        }
        await env.image.claim({ node: env.node, epoch: own.epoch });
        const xml = await env.launcher.domainXml(view.config);
        this.startedWith = view.config;
        await env.hypervisor.define(xml);
        if (this.own !== own || !this.holdsLease(own)) throw new OwnershipEnded();
        startCalled = true;
        await env.hypervisor.start(env.launcher.domainName);
        this.lastVm = "running";
        if (this.own !== own || !this.holdsLease(own)) {
          // The ownership ended while qemu was starting: never keep a copy we do not own.
          await this.destroyVm("ownership ended while starting");
          return false;
        }
        await this.record(own.epoch, kind, reason);
        env.log("info", { epoch: own.epoch, kind, reason, attempt: own.attempts }, "ha.started");
        return true;
      } catch (e) {
        const msg = (e as Error).message;
        const code = (e as { code?: string }).code;
        if (startCalled && (code === "timeout" || code === "connection-closed")) startOutcomeUnknown = true;
        env.log("warn", { epoch: own.epoch, attempt: own.attempts, err: msg }, "ha.start-failed");
        if (e instanceof OwnershipEnded) return false;
        if ((e as { code?: string }).code === "already-active") {
          if (!fence) {
            this.lastVm = "running";
            await this.record(own.epoch, kind, reason);
            return true;
          }
          // A copy from an earlier ownership still runs here and the fence we just ran cut its disk off:
          // replace it rather than take over a copy that cannot write.
          if (own.attempts < env.timing.startAttempts) {
            await this.destroyVm("stale local copy found when starting");
            continue;
          }
        }
        if (own.attempts >= env.timing.startAttempts || this.own !== own) {
          this.failures.push({ atMs: env.clock.wallMs(), reason: msg });
          if (startOutcomeUnknown && this.own === own) {
            // A start call that timed out or lost its connection may still bring qemu up later (libvirtd
            // restarted mid-call). Handing the MN-VM over now would let the next owner fence before that
            // copy appears, and not cut it off (sim:ha seed 40457: two writers). Let the lease run out
            // instead: the next owner is assigned a TTL from now and fences then; a copy that comes up here
            // meanwhile is destroyed as one running without ownership.
            env.log("error", { epoch: own.epoch, failure: msg }, "ha.start-outcome-unknown");
            this.own = undefined;
            this.selfFenced.add(own.epoch);
            return false;
          }
          await this.release(view, msg);
          return false;
        }
        await env.clock.sleep(1000);
      }
    }
  }

  /** Gives the MN-VM up after failed starts so the controller tries the next node. */
  private async release(view: ClusterView, failure: string): Promise<void> {
    const env = this.env;
    const own = this.own;
    if (!own) return;
    this.own = undefined;
    const a = view.assignment;
    const failed: Assignment | undefined = a && a.epoch === own.epoch ? { ...a, failed: failure } : undefined;
    await env.kv
      .txn(
        [this.ownerIsUs(own)],
        [
          { delete: { key: KEYS.owner } },
          ...(failed ? [{ put: { key: KEYS.assignment, value: encodeRecord(failed) } }] : []),
        ],
      )
      .catch(() => {});
    await env.kv.leaseRevoke(own.lease).catch(() => {});
    env.log("warn", { epoch: own.epoch, failure }, "ha.ownership-released");
  }

  private ownerIsUs(own: Ownership): TxnCompare {
    return { key: KEYS.owner, target: "value", op: "==", value: encodeRecord(own.record) };
  }

  // ---- as owner ----------------------------------------------------------------------------------------------

  private async asOwner(view: ClusterView, vm: VmState): Promise<void> {
    const env = this.env;
    const own = this.own!;
    const o = view.owner;
    if (!o || o.node !== env.node || o.epoch !== own.epoch) {
      // Our ownership ended in the KV (lease expired, or a newer epoch): never run a copy we do not own.
      env.log("warn", { epoch: own.epoch, owner: o ?? null }, "ha.ownership-lost");
      this.own = undefined;
      await this.destroyVm("ownership lost");
      return;
    }
    const desired = view.desired?.state ?? "running";
    if (desired === "stopped") {
      await this.stopAsOwner(vm);
      return;
    }
    const pr = view.passwordReset;
    if (pr?.state === "requested" && vm === "running") {
      await this.resetPassword(pr);
      return;
    }
    const mig = view.migration;
    if (
      mig &&
      mig.from === env.node &&
      mig.epoch === own.epoch &&
      mig.state === "requested" &&
      !this.migrating
    ) {
      await this.migrateAway(view, mig);
      return;
    }
    const staleRun =
      mig && mig.from === env.node && mig.epoch === own.epoch && mig.state === "running" && !this.migrating;
    if (staleRun && vm === "running") {
      // The record says a migration from here runs, but this agent runs none (its previous life started it,
      // or the failure could not be recorded) and the MN-VM is here: stop any libvirt job still under way
      // (the MN-VM then stays here), and record the failure so that HA and the operator can move on.
      try {
        await env.hypervisor.abortJob(env.launcher.domainName, { timeoutMs: 10_000 });
      } catch (e) {
        env.log("debug", { err: (e as Error).message }, "ha.migration-abort-failed");
        return;
      }
      env.log("warn", { epoch: own.epoch, to: mig.to }, "ha.migration-abandoned");
      await this.recordMigration(own, mig, { state: "failed", error: "abandoned: no agent ran it" }).catch(
        () => {},
      );
      return;
    }
    if (vm === "stopped" || vm === "absent") {
      if (this.migrating) return;
      if (staleRun) {
        // A live migration from here in this epoch was under way — started by this agent's previous life, or
        // its hand-over got no answer — and the MN-VM is gone from here: it runs on the target. Never start a
        // second copy here: hand over. The target checks when it claims, and starts it (fencing first) if it
        // does not run there after all.
        env.log("warn", { epoch: own.epoch, to: mig.to, vm }, "ha.migration-hand-over-resumed");
        this.migrating = true;
        try {
          await this.handOver(view, own, mig);
        } finally {
          this.migrating = false;
        }
        return;
      }
      // In-guest shutdown (or crash): only `zsha stop` keeps the MN-VM down (SPEC §3a). Start it again,
      // with the current config — fencing first, like any start: an ownership adopted after an agent
      // restart may never have fenced (its previous life claimed and stopped before starting), and a copy
      // elsewhere (a frozen former owner's, one that arrived by a migration) must not keep writing.
      own.attempts = 0;
      env.log("info", { epoch: own.epoch, vm }, "ha.restart-after-stop");
      await this.start(
        view,
        "restart-after-guest-shutdown",
        "restart after the MN-VM was shut down from inside",
        true,
      );
    }
  }

  private async stopAsOwner(vm: VmState): Promise<void> {
    const env = this.env;
    const own = this.own!;
    if (vm === "running") {
      if (!own.stopping) {
        own.stopping = true;
        env.log("info", { epoch: own.epoch }, "ha.stopping");
        await env.hypervisor.shutdown(env.launcher.domainName).catch(() => {});
        const deadline = env.clock.now() + env.timing.shutdownTimeoutMs;
        while (env.clock.now() < deadline && (await this.observeVm()) === "running")
          await env.clock.sleep(500);
        if (this.lastVm === "running") await this.destroyVm("did not shut down in time");
      }
      return;
    }
    // Stopped: give the ownership up so that `zsha start` picks the best node afresh.
    this.own = undefined;
    await env.image.release({ node: env.node, epoch: own.epoch }).catch(() => {});
    await env.kv.txn([this.ownerIsUs(own)], [{ delete: { key: KEYS.owner } }]).catch(() => {});
    await env.kv.leaseRevoke(own.lease).catch(() => {});
    env.log("info", { epoch: own.epoch }, "ha.stopped");
  }

  // ---- live migration away from here ------------------------------------------------------------------------

  private async migrateAway(view: ClusterView, mig: Migration): Promise<void> {
    const env = this.env;
    const own = this.own!;
    this.migrating = true;
    const put = (m: Partial<Migration>) => this.recordMigration(own, mig, m);
    try {
      try {
        // The target must see "running" before the MN-VM can appear there (else it destroys it as a copy
        // nobody owns): no migration without it.
        await put({ state: "running", percent: 0 });
        let lastPut = 0;
        await env.hypervisor.migrate(
          env.launcher.domainName,
          env.launcher.migrationUri(mig.to),
          { live: true, peerToPeer: true, persistentOnDest: true, undefineSource: true, autoConverge: true },
          (p) => {
            const now = env.clock.now();
            if (now - lastPut >= 300) {
              lastPut = now;
              void put({ state: "running", percent: Math.min(99, p.percent) }).catch(() => {});
            }
          },
        );
      } catch (e) {
        // libvirt did not move it (the contract: a failed or aborted migration leaves it here).
        const msg = (e as Error).message;
        env.log("warn", { to: mig.to, err: msg }, "ha.migration-failed");
        for (let i = 0; i < 3; i++) {
          if (
            await put({ state: "failed", error: msg }).then(
              () => true,
              () => false,
            )
          )
            break;
          await env.clock.sleep(200);
        }
        return;
      }
      // libvirt says the MN-VM runs on the target: from now on it is never ours to run again.
      await this.handOver(view, own, mig);
    } finally {
      this.migrating = false;
    }
  }

  /**
   * Writes the migration record — only while we own the MN-VM: a late write (a progress report still in
   * flight, a retry) never overwrites what the hand-over wrote. Rejects when not written.
   */
  private async recordMigration(own: Ownership, mig: Migration, m: Partial<Migration>): Promise<void> {
    const env = this.env;
    const ok = await env.kv.txn(
      [this.ownerIsUs(own)],
      [{ put: { key: KEYS.migration, value: encodeRecord({ ...mig, ...m, atMs: env.clock.wallMs() }) } }],
    );
    if (!ok) throw new Error("the MN-VM's ownership changed");
  }

  /**
   * After libvirt moved the MN-VM to `mig.to`: ownership moves there (one Txn on the epoch: a new
   * assignment of kind "migration", the migration done), and this node lets go of it whatever the answer —
   * a Txn without an answer is tried again while the lease holds; when it cannot be confirmed the lease is
   * given up, so the controller reassigns it and the new owner fences before starting.
   */
  private async handOver(view: ClusterView, own: Ownership, mig: Migration): Promise<void> {
    const env = this.env;
    this.lastVm = "absent";
    const next: Assignment = {
      node: mig.to,
      epoch: own.epoch + 1,
      kind: "migration",
      reason: `migration from ${env.node}`,
      previous: env.node,
      atMs: env.clock.wallMs(),
    };
    let handedOver = false;
    for (let attempt = 1; ; attempt++) {
      try {
        // false: the epoch or the owner changed — an earlier attempt of ours applied, or the ownership
        // ended; either way it is no longer ours.
        handedOver = await env.kv.txn(
          [
            { key: KEYS.epoch, target: "modRevision", op: "==", value: view.epochRevision },
            this.ownerIsUs(own),
          ],
          [
            { delete: { key: KEYS.owner } },
            { put: { key: KEYS.epoch, value: encodeRecord({ epoch: own.epoch + 1 }) } },
            { put: { key: KEYS.assignment, value: encodeRecord(next) } },
            {
              put: {
                key: KEYS.migration,
                value: encodeRecord({ ...mig, state: "done", percent: 100, atMs: env.clock.wallMs() }),
              },
            },
          ],
        );
        break;
      } catch (e) {
        env.log("debug", { attempt, err: (e as Error).message }, "ha.hand-over-unanswered");
        if (attempt >= 5 || this.own !== own || !this.holdsLease(own)) break;
        await env.clock.sleep(200);
      }
    }
    if (this.own === own) this.own = undefined;
    this.lastVm = "absent";
    await env.kv.leaseRevoke(own.lease).catch(() => {});
    env.log(handedOver ? "info" : "warn", { to: mig.to, handedOver }, "ha.migrated");
  }

  /** `zsha reset-MNVM-password`: the owner sets the default root password through the guest agent. */
  private async resetPassword(req: PasswordReset): Promise<void> {
    const env = this.env;
    let result: PasswordReset;
    try {
      await env.hypervisor.setUserPassword(env.launcher.domainName, "root", DEFAULT_MNVM_ROOT_PASSWORD, {
        timeoutMs: 30_000,
      });
      result = { ...req, state: "done", node: env.node, atMs: env.clock.wallMs() };
      env.log("info", { id: req.id }, "ha.password-reset");
    } catch (e) {
      result = {
        ...req,
        state: "failed",
        node: env.node,
        error: (e as Error).message,
        atMs: env.clock.wallMs(),
      };
      env.log("warn", { id: req.id, err: (e as Error).message }, "ha.password-reset-failed");
    }
    await env.kv.put(KEYS.passwordReset, encodeRecord(result)).catch(() => {});
  }

  // ---- helpers -------------------------------------------------------------------------------------------------

  private async destroyVm(why: string): Promise<void> {
    const env = this.env;
    try {
      await env.hypervisor.destroy(env.launcher.domainName, { timeoutMs: 10_000 });
      env.log("warn", { why }, "ha.destroyed");
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code !== "not-running" && code !== "no-domain")
        env.log("error", { why, err: (e as Error).message }, "ha.destroy-failed");
    }
    this.lastVm = "stopped";
  }

  private async record(epoch: number, kind: string, reason: string): Promise<void> {
    const env = this.env;
    const existing = await env.kv.list(KEYS.history(epoch, 0).slice(0, -4)).catch(() => []);
    const rec: HistoryRecord = {
      atMs: env.clock.wallMs(),
      node: env.node,
      epoch,
      kind,
      reason,
      ...(this.startedWith ? { configHash: configHash(this.startedWith) } : {}),
    };
    await env.kv.put(KEYS.history(epoch, existing.length), encodeRecord(rec)).catch(() => {});
  }
}
