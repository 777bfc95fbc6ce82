/**
 * The failure report, in text: for a partition that is not linearizable, the longest linearizable prefix
 * the search found (with the state after each operation), then the operations that could have come next
 * and why each could not, then what was never placed. It plays the role of porcupine's HTML visualization
 * in a test log.
 */
import type { PartitionReport } from "./checker.js";
import type { Operation } from "./history.js";
import type { Model } from "./model.js";

/** Long prefixes and leftovers are cut to their most relevant end so the report stays readable. */
const MAX_LISTED = 25;

export function explainPartition<State, Input, Output>(
  model: Model<State, Input, Output>,
  report: PartitionReport<Input, Output, State>,
  origin: number,
): string {
  const line = (op: Operation<Input, Output>) =>
    `client ${String(op.client).padEnd(6)} [${formatTime(op.callAt - origin)}, ${formatTime(op.returnAt - origin)}] ` +
    model.describeOperation(op.input, op.output);

  const lines: string[] = [];
  const total = report.operations.length;
  const placed = report.linearization.length;
  if (report.result === "unknown") {
    lines.push(
      `${report.name}: no verdict — the search ran out of time after ${report.steps} steps ` +
        `(${placed} of ${total} operations placed in the longest prefix so far).`,
    );
    return lines.join("\n");
  }
  lines.push(`${report.name}: NOT linearizable (${total} operations; at most ${placed} can be ordered).`);

  // Replay the prefix to show the state after each operation and the state the leftovers faced.
  let state = report.init;
  const prefixLines: string[] = [];
  report.linearization.forEach((op, i) => {
    const step = model.step(state, op.input, op.output);
    if (!step.ok) throw new Error(`linearizability report: prefix operation ${i + 1} does not replay`);
    state = step.next;
    prefixLines.push(`  ${String(i + 1).padStart(4)}. ${line(op)}  => ${model.describeState(state)}`);
  });
  lines.push(
    placed === 0
      ? "Longest linearizable prefix: none (not even the first operation fits)."
      : "Longest linearizable prefix:",
  );
  if (prefixLines.length > MAX_LISTED) {
    lines.push(`        ... ${prefixLines.length - MAX_LISTED} earlier operations`);
  }
  lines.push(...prefixLines.slice(-MAX_LISTED));
  lines.push(`State after it: ${model.describeState(state)}`);

  // Only operations invoked before the first pending return could come next (real-time order).
  const firstReturn = Math.min(...report.unplaced.map((op) => op.returnAt));
  const candidates = report.unplaced.filter((op) => op.callAt <= firstReturn);
  lines.push("None of these can come next:");
  for (const op of candidates) {
    const step = model.step(state, op.input, op.output);
    // Rare: the cache or an effect class cut the longer prefix through this operation short.
    const why = step.ok
      ? "fits here, but the search found no way to go on after it"
      : (step.why ?? "the model rejects it");
    lines.push(`   x ${line(op)}  -- ${why}`);
  }
  const rest = report.unplaced.filter((op) => !candidates.includes(op));
  if (rest.length > 0) {
    lines.push(`Not placed either (${rest.length}, later in real time):`);
    lines.push(...rest.slice(0, MAX_LISTED).map((op) => `     ${line(op)}`));
    if (rest.length > MAX_LISTED) lines.push(`     ... ${rest.length - MAX_LISTED} more`);
  }
  return lines.join("\n");
}

function formatTime(ms: number): string {
  return (Number.isFinite(ms) ? ms.toFixed(3) : "never").padStart(9);
}
