// Flow control between grpc-js's object-mode Node streams and async iteration, on both ends of a call.
import type { Readable, Writable } from "node:stream";

/**
 * The messages arriving on a call, as a one-shot AsyncIterable. It pulls with `read()` only when the
 * consumer asks for the next message, so a slow consumer stops grpc-js from reading and HTTP/2 flow
 * control pushes back on the sender. Unlike the stream's own iterator, leaving the loop early does not
 * destroy the stream, which for a duplex would also tear down the sending half.
 *
 * The owner calls `finish()` once the call is over; the iterator then yields what is still buffered and
 * ends, or throws the error given.
 */
export class Inbox<T> implements AsyncIterable<T> {
  private outcome: { error: Error | undefined } | undefined;
  private wake: (() => void) | undefined;
  private iterated = false;

  constructor(
    private readonly stream: Readable,
    /** Called when the consumer stops iterating before the call is over. */
    private readonly onAbandon: () => void,
  ) {
    stream.on("readable", () => this.notify());
  }

  finish(error?: Error): void {
    if (this.outcome) return;
    this.outcome = { error };
    this.notify();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    if (this.iterated) throw new Error("the messages of a call can be iterated only once");
    this.iterated = true;
    try {
      for (;;) {
        const message: T | null = this.stream.read();
        if (message !== null) {
          yield message;
          continue;
        }
        if (this.outcome) {
          if (this.outcome.error) throw this.outcome.error;
          return;
        }
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      }
    } finally {
      if (!this.outcome) this.onAbandon();
    }
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}

/**
 * Resolves once `stream` drains after `write()` returned false, or once `over` fires (the call ended and
 * 'drain' will never come; the caller looks at why).
 */
export function whenWritable(stream: Writable, over: AbortSignal): Promise<void> {
  if (over.aborted || !stream.writableNeedDrain) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      stream.off("drain", done);
      over.removeEventListener("abort", done);
      resolve();
    };
    stream.on("drain", done);
    over.addEventListener("abort", done);
  });
}
