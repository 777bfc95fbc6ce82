// The sending end toward one peer: a bounded queue and ONE long-lived stream that carries the queue in
// order. The stream is opened only once the channel is connected, so messages wait in the queue (not in a
// doomed call) while the peer is down; a broken stream is reopened after an exponential backoff.
import * as grpc from "@grpc/grpc-js";
import * as pb from "../gen/zsha/raft/v1/raft_pb.js";
import { type BidiCall, type Client, createClient } from "../grpc/index.js";
import { type Index, type Message, MessageType, type NodeId } from "../raft/index.js";
import { Backoff } from "./backoff.js";
import { exactSize, fitsIn, messageFrame, type RequestInit, snapshotFrames } from "./frames.js";
import { errorFields, type Log } from "./log.js";
import { FRAME_OVERHEAD_BYTES, type Settings } from "./options.js";
import { BoundedQueue } from "./queue.js";
import { clientChannelOptions, clientCredentials, type TlsConfig } from "./tls.js";

type Raft = typeof pb.RaftService extends { method: infer M } ? M : never;
type Stream = BidiCall<RequestInit, pb.StreamResponse>;

/** What a peer link needs from its Transport. */
export interface OutboundHost {
  readonly selfId: NodeId;
  readonly clusterId: string;
  readonly tls: TlsConfig | undefined;
  readonly settings: Settings;
  readonly log: Log;
  readonly random: () => number;
  unreachable(peer: NodeId): void;
  snapshotStatus(peer: NodeId, ok: boolean): void;
}

export interface PeerStats {
  readonly address: string;
  /** A stream to the peer is open. */
  readonly connected: boolean;
  readonly queued: number;
  /** Messages handed to the stream. */
  readonly sent: number;
  /** Messages dropped because the queue was full. */
  readonly dropped: number;
  /** Messages dropped because they were over maxMessageBytes. */
  readonly oversized: number;
}

/** A stream that lived this long was healthy: the next failure starts the backoff over. */
const HEALTHY_MS = 1_000;
/** How long one wait for a connectivity change lasts before the loop looks again (and at `stopped`). */
const WATCH_MS = 1_000;

export class PeerLink {
  private readonly queue: BoundedQueue<Message>;
  private readonly backoff: Backoff;
  private channel!: grpc.Channel;
  private client!: Client<Raft>;
  private stream: Stream | undefined;
  private streamOver = false;
  /** Indexes of snapshots being sent or sent and not yet acknowledged, oldest first. */
  private awaitingAck: Index[] = [];
  private wake: (() => void) | undefined;
  private cancelSleep: (() => void) | undefined;
  private stopped = false;
  /** onUnreachable was reported for the current outage; cleared when a stream opens. */
  private reportedDown = false;
  private readonly loop: Promise<void>;
  private counts = { sent: 0, dropped: 0, oversized: 0 };

  constructor(
    readonly id: NodeId,
    private address: string,
    private readonly host: OutboundHost,
  ) {
    this.queue = new BoundedQueue(host.settings.queueLimit);
    this.backoff = new Backoff(host.settings.backoff, host.random);
    this.dial();
    this.loop = this.run();
  }

  /** Queues `m`, or says why it was dropped. Never throws. */
  enqueue(m: Message): "queued" | "full" | "dropped" {
    if (this.stopped) return "dropped";
    if (m.type === MessageType.Snap && !m.snapshot) {
      this.host.log("warn", { peer: this.id, type: m.type }, "transport.snapshot_missing");
      return "dropped";
    }
    if (m.type !== MessageType.Snap && !fitsIn(m, this.host.settings.maxMessageBytes)) {
      this.counts.oversized++;
      this.host.log(
        "warn",
        { peer: this.id, type: m.type, limit: this.host.settings.maxMessageBytes },
        "transport.message_too_large",
      );
      return "dropped";
    }
    if (!this.queue.push(m)) {
      this.counts.dropped++;
      return "full";
    }
    this.poke();
    return "queued";
  }

  stats(): PeerStats {
    return {
      address: this.address,
      connected: this.stream !== undefined && !this.streamOver,
      queued: this.queue.length,
      ...this.counts,
    };
  }

  /** Dials `address` from now on; the open stream (if any) is ended and the queue carries over. */
  retarget(address: string): void {
    if (address === this.address || this.stopped) return;
    this.host.log("info", { peer: this.id, from: this.address, to: address }, "transport.peer_moved");
    const old = this.channel;
    this.address = address;
    this.dial();
    this.endStream();
    old.close();
    this.cancelSleep?.();
  }

  /** Ends the stream and the loop; queued messages are dropped, unacknowledged snapshots reported failed. */
  async stop(): Promise<void> {
    if (this.stopped) return this.loop;
    this.stopped = true;
    this.queue.clear();
    this.endStream();
    this.cancelSleep?.();
    this.channel.close();
    await this.loop;
  }

  private dial(): void {
    const { tls, settings } = this.host;
    this.channel = new grpc.Channel(this.address, clientCredentials(tls, this.id), {
      ...clientChannelOptions(tls, this.id),
      "grpc.max_send_message_length": settings.maxMessageBytes + FRAME_OVERHEAD_BYTES,
      "grpc.keepalive_time_ms": settings.keepaliveMs,
      "grpc.keepalive_timeout_ms": Math.ceil(settings.keepaliveMs / 2),
      "grpc.initial_reconnect_backoff_ms": settings.backoff.initialMs,
      "grpc.max_reconnect_backoff_ms": settings.backoff.maxMs,
      // grpc-js keeps each written message of a call in a retry buffer (1 MiB per call by default) and
      // re-slices that array whenever one write completes: quadratic once thousands of small messages
      // are in flight (measured: 5k msgs/s with 44% of the CPU in clearSentMessages). A Raft stream is
      // never retried by grpc (this loop reopens it), so no buffer: writes then complete only when
      // HTTP/2 takes them, which is also the backpressure the queue needs.
      "grpc.enable_retries": 0,
      "grpc.per_rpc_retry_buffer_size": 0,
      // Each peer gets its own connection, never one shared with another channel to the same address.
      "grpc.use_local_subchannel_pool": 1,
    });
    this.client = createClient(pb.RaftService, this.channel);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      if (!(await this.connected())) continue;
      const opened = Date.now();
      try {
        await this.carry();
      } catch (err) {
        if (!this.stopped)
          this.host.log("warn", { peer: this.id, ...errorFields(err) }, "transport.stream_failed");
      }
      this.closeStream();
      if (this.stopped) break;
      this.down();
      if (Date.now() - opened >= HEALTHY_MS) this.backoff.reset();
      await this.sleep(this.backoff.next());
    }
    this.closeStream();
  }

  /** Waits until the channel is connected (true), or a while (false: the caller looks again). */
  private async connected(): Promise<boolean> {
    const channel = this.channel;
    const state = channel.getConnectivityState(true);
    if (state === grpc.connectivityState.READY) return true;
    if (state === grpc.connectivityState.TRANSIENT_FAILURE) this.down();
    if (state === grpc.connectivityState.SHUTDOWN) {
      // Replaced by retarget(), or stopped: the loop picks up the new channel or ends.
      await this.sleep(0);
      return false;
    }
    await new Promise<void>((resolve) => {
      channel.watchConnectivityState(state, Date.now() + WATCH_MS, () => resolve());
    });
    return false;
  }

  /** Opens the stream, says hello, then writes the queue in order until the stream ends. */
  private async carry(): Promise<void> {
    const stream = this.client.stream();
    this.stream = stream;
    this.streamOver = false;
    const acks = this.readAcks(stream);
    try {
      await stream.send({
        frame: {
          case: "hello",
          value: { from: this.host.selfId, to: this.id, clusterId: this.host.clusterId },
        },
      });
      this.reportedDown = false;
      this.host.log("debug", { peer: this.id, addr: this.address }, "transport.stream_open");
      for (;;) {
        const m = await this.next();
        if (!m) break;
        if (m.type === MessageType.Snap) await this.sendSnapshot(stream, m);
        else await stream.send(messageFrame(m));
        this.counts.sent++;
      }
    } finally {
      stream.cancel();
      await acks;
    }
    const failure = await acks;
    if (failure) throw failure;
  }

  private async sendSnapshot(stream: Stream, m: Message): Promise<void> {
    const { maxMessageBytes, snapshotChunkBytes } = this.host.settings;
    // The first chunk carries the message (with the snapshot's membership) in the room left beside the data.
    if (exactSize(m) > FRAME_OVERHEAD_BYTES / 2) {
      this.host.log(
        "warn",
        { peer: this.id, type: m.type, limit: maxMessageBytes },
        "transport.message_too_large",
      );
      this.counts.oversized++;
      this.host.snapshotStatus(this.id, false);
      return;
    }
    const index = m.snapshot?.meta.index ?? (0 as Index);
    this.host.log(
      "info",
      { peer: this.id, index, bytes: m.snapshot?.data.length },
      "transport.snapshot_sending",
    );
    // Counted as awaiting its ack from the first chunk on: whether the stream breaks during the chunks
    // or after them, closeStream() reports it failed exactly once.
    this.awaitingAck.push(index);
    for (const frame of snapshotFrames(m, snapshotChunkBytes)) await stream.send(frame);
  }

  /** Reads SnapshotAcks until the stream ends; resolves with its failure (undefined when it ended OK). */
  private async readAcks(stream: Stream): Promise<unknown> {
    try {
      for await (const response of stream.responses) {
        if (response.frame.case !== "snapshotAck") continue;
        const ack = response.frame.value;
        const at = this.awaitingAck.findIndex((i) => BigInt(i) === ack.index);
        if (at < 0) {
          this.host.log(
            "warn",
            { peer: this.id, index: Number(ack.index) },
            "transport.unexpected_snapshot_ack",
          );
          continue;
        }
        // Older unacknowledged snapshots were lost on the way; Raft needs to hear about each.
        for (const _lost of this.awaitingAck.splice(0, at)) this.host.snapshotStatus(this.id, false);
        this.awaitingAck.shift();
        if (!ack.ok)
          this.host.log(
            "warn",
            { peer: this.id, index: Number(ack.index), err: ack.error },
            "transport.snapshot_refused",
          );
        this.host.snapshotStatus(this.id, ack.ok);
      }
      return undefined;
    } catch (err) {
      return err;
    } finally {
      this.streamOver = true;
      this.poke();
    }
  }

  /** The next queued message, or undefined when the stream is over or the link stops. */
  private async next(): Promise<Message | undefined> {
    for (;;) {
      if (this.stopped || this.streamOver) return undefined;
      const m = this.queue.shift();
      if (m) return m;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  /** Ends the open stream now: nothing more is written to it, even before its status arrives. */
  private endStream(): void {
    this.streamOver = true;
    this.stream?.cancel();
    this.poke();
  }

  private poke(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  /** Forgets the stream; a snapshot in flight or unacknowledged on it is reported failed. */
  private closeStream(): void {
    if (!this.stream) return;
    this.stream = undefined;
    const lost = this.awaitingAck.length;
    this.awaitingAck = [];
    for (let i = 0; i < lost; i++) this.host.snapshotStatus(this.id, false);
  }

  /** Reports the peer unreachable once per outage. */
  private down(): void {
    if (this.reportedDown || this.stopped) return;
    this.reportedDown = true;
    this.host.unreachable(this.id);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.cancelSleep = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.cancelSleep = done;
    });
  }
}
