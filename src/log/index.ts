export {
  type AgentLog,
  type AgentLogOptions,
  createAgentLog,
  DEFAULT_LOG_DIR,
  rotatedName,
} from "./logger.js";
export { type LogSinkStats, SafeDestination, type SafeDestinationOptions } from "./safe-destination.js";
