// A push-driven async iterable: producers push, one consumer iterates; close() ends it after what is queued.

export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private waiting: ((r: IteratorResult<T>) => void) | undefined;
  private closed = false;
  private failure: Error | undefined;

  push(item: T): void {
    if (this.closed) return;
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w({ value: item, done: false });
    } else {
      this.items.push(item);
    }
  }

  close(err?: Error): void {
    if (this.closed) return;
    this.closed = true;
    this.failure = err;
    if (this.waiting && this.items.length === 0) {
      const w = this.waiting;
      this.waiting = undefined;
      if (err) queueMicrotask(() => w(Promise.reject(err) as never));
      else w({ value: undefined, done: true });
    }
  }

  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.closed) {
        if (this.failure) throw this.failure;
        return;
      }
      const r = await new Promise<IteratorResult<T>>((resolve) => {
        this.waiting = resolve;
      });
      if (r.done) {
        if (this.failure) throw this.failure;
        return;
      }
      yield r.value;
    }
  }
}
