// A bounded FIFO of outgoing messages for one peer. Array with a moving head: O(1) push and shift, compacted
// now and then so a long-lived queue does not keep a growing dead prefix.

export class BoundedQueue<T> {
  private items: T[] = [];
  private head = 0;

  constructor(readonly limit: number) {}

  get length(): number {
    return this.items.length - this.head;
  }

  /** Appends `item`, or returns false (and keeps the queue as it is) when the queue is full. */
  push(item: T): boolean {
    if (this.length >= this.limit) return false;
    this.items.push(item);
    return true;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined as T;
    this.head++;
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): T[] {
    const rest = this.items.slice(this.head);
    this.items = [];
    this.head = 0;
    return rest;
  }
}
