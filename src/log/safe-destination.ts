// A pino destination that can never stop or slow the agent: lines go into a bounded in-memory queue that a
// background pump hands to the real sink (a rotating file) with asynchronous writes. When the sink fails
// (full disk, read-only folder, I/O error) or cannot keep up, lines are dropped and counted instead of
// blocking the event loop or throwing into the HA code that logged them. The sink is reopened after a pause.

import type { Writable } from "node:stream";

export interface LogSinkStats {
  /** Lines the sink accepted. */
  readonly written: number;
  /** Lines lost: queue full, or the sink failed while they were queued or being written. */
  readonly dropped: number;
  /** Times the sink failed (open or write). */
  readonly failures: number;
  /** The last failure's message, if any. */
  readonly lastError?: string;
}

export interface SafeDestinationOptions {
  /** Opens the sink. Errors may be thrown here or emitted later as 'error'; both count as a failure. */
  open: () => Writable;
  /** Bytes the queue may hold before new lines are dropped (default 1 MiB). */
  maxQueuedBytes?: number;
  /** Pause after a failure before the sink is opened again (default 5 s). */
  retryMs?: number;
  /**
   * A write not finished after this long counts as a failure (default 10 s): a sink that stops answering
   * (seen once: rotating-file-stream never finishing a midnight rotation) must not silence the log for good.
   */
  stallMs?: number;
}

export class SafeDestination {
  private readonly openSink: () => Writable;
  private readonly maxQueuedBytes: number;
  private readonly retryMs: number;
  private readonly stallMs: number;
  private queue: string[] = [];
  private queuedBytes = 0;
  private sink: Writable | undefined;
  private writing = false;
  private pumpScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private idleWaiters: (() => void)[] = [];
  private st = { written: 0, dropped: 0, failures: 0, lastError: undefined as string | undefined };

  constructor(opts: SafeDestinationOptions) {
    this.openSink = opts.open;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 1 << 20;
    this.retryMs = opts.retryMs ?? 5000;
    this.stallMs = opts.stallMs ?? 10_000;
  }

  /** Called by pino for every line. Never throws, never waits. */
  write(line: string): boolean {
    if (this.closed || this.queuedBytes + line.length > this.maxQueuedBytes) {
      this.st.dropped++;
      return true;
    }
    this.queue.push(line);
    this.queuedBytes += line.length;
    this.schedulePump();
    return true;
  }

  stats(): LogSinkStats {
    return { ...this.st };
  }

  /** Resolves once everything queued has been written or dropped (for tests and a clean stop). */
  idle(): Promise<void> {
    if (!this.writing && this.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Flushes for at most `timeoutMs`, then closes the sink; lines written after this are dropped. */
  async close(timeoutMs = 2000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.idle(),
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.dropQueued();
    const sink = this.sink;
    this.sink = undefined;
    if (sink) {
      await new Promise<void>((resolve) => {
        sink.once("close", resolve);
        sink.once("error", () => resolve());
        sink.end();
        setTimeout(resolve, timeoutMs).unref();
      });
    }
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.writing) return;
    this.pumpScheduled = true;
    // One batch per turn of the event loop: the logging call returns at once.
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  private pump(): void {
    if (this.writing || this.queue.length === 0) {
      this.notifyIdle();
      return;
    }
    if (this.closed) return;
    if (!this.sink) {
      if (this.retryTimer) return; // waiting out a failure; the queue's cap bounds memory meanwhile
      if (!this.open()) return;
    }
    const sink = this.sink as Writable;
    const batch = this.queue;
    this.queue = [];
    this.queuedBytes = 0;
    this.writing = true;
    let settled = false;
    const stall = setTimeout(() => {
      if (settled) return;
      settled = true;
      this.writing = false;
      this.st.dropped += batch.length;
      this.fail(sink, new Error(`a log write did not finish within ${this.stallMs} ms`));
    }, this.stallMs);
    stall.unref();
    try {
      sink.write(batch.join(""), (err) => {
        if (settled) return; // given up on already: the stall was counted as a failure
        settled = true;
        clearTimeout(stall);
        this.writing = false;
        if (err) {
          this.st.dropped += batch.length;
          this.fail(sink, err);
        } else {
          this.st.written += batch.length;
        }
        this.pump();
      });
    } catch (e) {
      settled = true;
      clearTimeout(stall);
      this.writing = false;
      this.st.dropped += batch.length;
      this.fail(sink, e as Error);
    }
  }

  private open(): boolean {
    try {
      const sink = this.openSink();
      // A failing sink reports here (open errors included); without a listener Node would throw.
      sink.on("error", (err) => this.fail(sink, err));
      this.sink = sink;
      return true;
    } catch (e) {
      this.fail(undefined, e as Error);
      return false;
    }
  }

  /** Forgets the failed sink, drops what waits for it and retries after a pause. */
  private fail(sink: Writable | undefined, err: Error): void {
    if (sink !== undefined && sink !== this.sink) return; // already handled (callback and 'error' both fire)
    this.st.failures++;
    this.st.lastError = err.message;
    this.sink = undefined;
    if (sink) {
      sink.removeAllListeners("error");
      sink.on("error", () => {});
      sink.destroy();
    }
    this.dropQueued();
    if (this.closed || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.pump();
    }, this.retryMs);
    this.retryTimer.unref();
  }

  private dropQueued(): void {
    this.st.dropped += this.queue.length;
    this.queue = [];
    this.queuedBytes = 0;
    this.notifyIdle();
  }

  private notifyIdle(): void {
    if (this.writing || this.queue.length > 0) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
