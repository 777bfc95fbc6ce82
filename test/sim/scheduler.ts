// Virtual time: a priority queue of events ordered by (time, insertion order). Nothing here reads a real
// clock; a run is a pure function of its seed.

export interface ScheduledEvent {
  readonly at: number;
  readonly seq: number;
  readonly run: () => void;
  cancelled: boolean;
}

export class Scheduler {
  now = 0;
  private seq = 0;
  private heap: ScheduledEvent[] = [];

  at(time: number, run: () => void): ScheduledEvent {
    const ev: ScheduledEvent = { at: Math.max(time, this.now), seq: this.seq++, run, cancelled: false };
    this.push(ev);
    return ev;
  }

  after(delay: number, run: () => void): ScheduledEvent {
    return this.at(this.now + delay, run);
  }

  /** Runs events in order until `until` (inclusive) or until `stop()` returns true after an event. */
  runUntil(until: number, stop?: () => boolean): void {
    while (this.heap.length > 0 && this.heap[0]!.at <= until) {
      const ev = this.pop()!;
      if (ev.cancelled) continue;
      this.now = ev.at;
      ev.run();
      if (stop?.()) return;
    }
    this.now = Math.max(this.now, until);
  }

  private less(a: ScheduledEvent, b: ScheduledEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(ev: ScheduledEvent): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): ScheduledEvent | undefined {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length > 0 && last) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}
