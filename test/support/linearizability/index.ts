/**
 * A porcupine-style linearizability checker for tests: record concurrent client operations with
 * HistoryRecorder, then checkOperations(kvModel, recorder.history(), { timeoutMs }).
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
} from "./kv-model.js";
export { hashString, type Model, type Partition, type StepResult } from "./model.js";
export { type CallHandle, HistoryRecorder, type RecorderOptions } from "./recorder.js";
