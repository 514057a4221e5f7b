import { currentLogContext, type LogContext } from "./context";

/**
 * One JSON object per line, for Workers Logs: `level`, `event` (a dotted name such as
 * `turn.finished`), the request context (`request_id`, `user_id`, `conversation_id`), then the
 * line's own fields. `message` is a human sentence, `error` the failure (`String(err)`).
 */
export type LogLevel = "info" | "error";

/** The fields a line may carry besides `level` and `event`. Values must be JSON. */
export interface LogFields extends LogContext {
  message_id?: string;
  /** A human sentence for the operator. */
  message?: string;
  /** The failure; an `Error` is written as `String(err)` ("Name: message"). */
  error?: unknown;
  [field: string]: unknown;
}

/** Workers Logs takes the level from the console method, so each level has its own. */
const WRITERS: Readonly<Record<LogLevel, (line: string) => void>> = {
  info: (line) => console.log(line),
  error: (line) => console.error(line),
};

/**
 * Credentials that must never reach a log even inside an error text: bearer headers, JWTs
 * (three base64url parts, the first `eyJ`, i.e. `{"`), edge-chat API keys (`ec_` + 43),
 * DashScope keys (`sk-…`) and Standard Webhooks secrets (`whsec_` + base64).
 */
const SECRETS = [
  /\bBearer\s+\S+/gi,
  /\beyJ[\w-]*\.[\w-]+\.[\w-]*/g,
  /\bec_[\w-]{43}\b/g,
  /\bsk-[\w-]{4,}/g,
  /\bwhsec_[\w+/=]+/g,
];

/** `text` with anything shaped like a credential replaced by `[redacted]`. */
function redactSecrets(text: string): string {
  return SECRETS.reduce((out, pattern) => out.replace(pattern, "[redacted]"), text);
}

/** The JSON line of an event, with the current request context and secrets redacted. */
export function formatLog(level: LogLevel, event: string, fields: LogFields = {}): string {
  const { error, ...rest } = fields;
  const line = {
    level,
    event,
    ...currentLogContext(),
    ...rest,
    ...(error === undefined ? {} : { error: String(error) }),
  };
  return JSON.stringify(line, (_key, value: unknown) =>
    typeof value === "string" ? redactSecrets(value) : value,
  );
}

/** Writes an already formatted line at `level`. */
export function writeLog(level: LogLevel, line: string): void {
  WRITERS[level](line);
}

/** Logs an event at `level`. */
function log(level: LogLevel, event: string, fields?: LogFields): void {
  writeLog(level, formatLog(level, event, fields));
}

/** Something happened that operators may count or graph (a turn finished, a completion settled). */
export const logInfo = (event: string, fields?: LogFields) => log("info", event, fields);

/** Something failed and someone should look. */
export const logError = (event: string, fields?: LogFields) => log("error", event, fields);
