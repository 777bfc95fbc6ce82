import { describe, expect, it } from "vitest";
import { ManualScheduler } from "../../src/hypervisor/sim-scheduler.js";

describe("ManualScheduler", () => {
  it("runs timers in due order, same-instant ones in scheduling order, and moves time to each", () => {
    const s = new ManualScheduler(1000);
    const ran: string[] = [];
    const at = (label: string) => () => ran.push(`${label}@${s.now()}`);
    s.schedule(30, at("c"));
    s.schedule(10, at("a"));
    s.schedule(10, at("b"));
    const cancel = s.schedule(20, at("cancelled"));
    s.schedule(0, () => {
      ran.push(`zero@${s.now()}`);
      // Scheduled while running, due within the window: runs in the same advance.
      s.schedule(5, at("nested"));
    });
    cancel();
    cancel();
    expect(s.pending()).toBe(4);
    s.advance(25);
    expect(ran).toEqual(["zero@1000", "nested@1005", "a@1010", "b@1010"]);
    expect(s.now()).toBe(1025);
    s.advance(100);
    expect(ran.at(-1)).toBe("c@1030");
    expect(s.now()).toBe(1125);
    expect(s.pending()).toBe(0);
  });

  it("keeps order over many timers (heap property)", () => {
    const s = new ManualScheduler();
    const ran: number[] = [];
    // A fixed pseudo-random sequence of delays, so the test is deterministic.
    let x = 7;
    const delays = Array.from({ length: 500 }, () => {
      x = (x * 1103515245 + 12345) % 2 ** 31;
      return x % 1000;
    });
    delays.forEach((d, i) => {
      s.schedule(d, () => ran.push(i));
    });
    s.advance(1000);
    const expected = delays
      .map((d, i) => ({ d, i }))
      .sort((p, q) => p.d - q.d || p.i - q.i)
      .map((p) => p.i);
    expect(ran).toEqual(expected);
  });
});
