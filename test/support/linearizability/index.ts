/**
 * A porcupine-style linearizability checker for tests.
 *
 *   const recorder = new HistoryRecorder<KvInput, KvOutput>();
 *   await recorder.record("c1", { op: "put", key, value }, async () => { await kv.put(key, value); return { op: "put" }; });
 *   const { result, info } = checkOperations(kvModel, recorder.history(), { timeoutMs: 30_000 });
 *   expect(result, info.explanation).toBe("ok");
 *
 * What keeps a check fast (measured in test/linearizability/performance.test.ts): few clients per key at
 * once — the search grows with how many operations overlap on one key, not with history length — so
 * spread clients over several keys, and for long runs move to fresh keys every few hundred operations
 * (Jepsen's "independent" keys). Write unique values, so a read names the write it saw. Timed-out
 * operations cost little when they never took effect; many that took effect late cost more. Treat
 * "unknown" (time ran out) as a failed test, not a pass: it means nothing was proven.
 */
export {
  type CheckInfo,
  type CheckOptions,
  type CheckResult,
  checkOperations,
  type PartitionReport,
  type Verdict,
} from "./checker.js";
export {
  type ClientId,
  type History,
  HistoryError,
  historyFromJson,
  historyToJson,
  isUnknown,
  type Operation,
  UNKNOWN,
  type Unknown,
  validateHistory,
} from "./history.js";
export {
  type CasExpect,
  describeKeyState,
  type KeyState,
  type KvInput,
  type KvOperation,
  type KvOutput,
  kvModel,
  type UnreadValue,
} from "./kv-model.js";
export { hashString, type Model, type Partition, type StepResult } from "./model.js";
export { type CallHandle, HistoryRecorder, type RecorderOptions } from "./recorder.js";
