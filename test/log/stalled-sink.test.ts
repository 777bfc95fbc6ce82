// A sink that stops answering (a write whose callback never comes) must not silence the log for good:
// after stallMs the write counts as a failure and the sink is reopened; later lines reach the new sink.
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { SafeDestination } from "../../src/log/safe-destination.js";

describe("SafeDestination with a stalled sink", () => {
  it("gives up on a write that never finishes, reopens the sink and writes on", async () => {
    const got: string[] = [];
    let opened = 0;
    const dest = new SafeDestination({
      stallMs: 200,
      retryMs: 50,
      open: () => {
        opened++;
        return opened === 1
          ? new Writable({ write: () => {} }) // accepts the chunk, never calls back
          : new Writable({
              write(chunk: Buffer, _enc, cb) {
                got.push(chunk.toString());
                cb();
              },
            });
      },
    });
    dest.write("lost\n");
    await new Promise((r) => setTimeout(r, 400));
    expect(dest.stats()).toMatchObject({ written: 0, dropped: 1, failures: 1 });
    expect(dest.stats().lastError).toMatch(/did not finish within 200 ms/);
    dest.write("kept\n");
    await dest.idle();
    expect(got.join("")).toBe("kept\n");
    expect(opened).toBe(2);
    expect(dest.stats()).toMatchObject({ written: 1, dropped: 1, failures: 1 });
    await dest.close();
  });
});
