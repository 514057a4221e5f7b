import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ApiError, type ErrorCode } from "../errors/api-error";
import { parseWellFormedJson, truncateText } from "../text/well-formed";
import type { StreamErrorInfo } from "./types";

/** Where an upstream failure happened: before the first body byte (retryable) or inside a 200 stream. */
export type UpstreamPhase = "pre-stream" | "mid-stream";

/** Code the client passes for a first-byte timeout (DashScope has no such code of its own). */
export const UPSTREAM_TIMEOUT_CODE = "edge_chat.first_byte_timeout";
/** Code the client passes for a connection that failed or closed before an answer arrived. */
export const UPSTREAM_NETWORK_CODE = "edge_chat.network_error";

/**
 * Retry-After we advertise for a 429 when DashScope gave none: its rate limits
 * "reset typically within one minute" (PROTOCOL.md §7.3).
 */
export const DEFAULT_RATE_LIMIT_RETRY_AFTER_MS = 60_000;

/** Longest upstream message we relay (invalid-parameter texts are short; this bounds odd ones). */
const MAX_RELAYED_MESSAGE_CHARS = 500;

/** What is known about one upstream failure, before it is mapped to our error codes. */
export interface UpstreamErrorInput {
  /** HTTP status of the upstream response; `null` for timeouts, network failures and OpenAI-shape stream frames. */
  status: number | null;
  code?: string | null;
  type?: string | null;
  message?: string | null;
  requestId?: string | null;
  /** Upstream `Retry-After`, in milliseconds, when it sent one. */
  retryAfterMs?: number | null;
  phase: UpstreamPhase;
}

interface UpstreamDetails {
  upstreamStatus: number | null;
  upstreamCode: string | null;
  requestId: string | null;
  retryable: boolean;
  retryAfterMs: number | null;
  phase: UpstreamPhase;
}

/**
 * A DashScope failure mapped to our error envelope. `status`/`code`/`message` are safe to send to
 * mobile clients (they never contain the API key or DashScope's text about credentials); the
 * `upstream*` fields are for logs and retry decisions.
 */
export class UpstreamError extends ApiError {
  readonly upstreamStatus: number | null;
  readonly upstreamCode: string | null;
  readonly requestId: string | null;
  /** Whether sending the same request again may succeed (rate limit, 5xx, timeout, network). */
  readonly retryable: boolean;
  /**
   * For 429s: how long the caller should wait (DashScope's `Retry-After`, else
   * {@link DEFAULT_RATE_LIMIT_RETRY_AFTER_MS}); mirrored in the `Retry-After` response header. `null` otherwise.
   */
  readonly retryAfterMs: number | null;
  readonly phase: UpstreamPhase;
  /** Attempts made before giving up; set by the client. */
  attempts = 1;

  constructor(
    status: ContentfulStatusCode,
    code: ErrorCode,
    message: string,
    details: UpstreamDetails,
    param?: string,
  ) {
    const headers =
      details.retryAfterMs !== null
        ? { "Retry-After": String(Math.max(1, Math.ceil(details.retryAfterMs / 1000))) }
        : undefined;
    super(status, code, message, param, headers);
    this.name = "UpstreamError";
    this.upstreamStatus = details.upstreamStatus;
    this.upstreamCode = details.upstreamCode;
    this.requestId = details.requestId;
    this.retryable = details.retryable;
    this.retryAfterMs = details.retryAfterMs;
    this.phase = details.phase;
  }
}

const lower = (values: string[]) => new Set(values.map((v) => v.toLowerCase()));

const CONTENT_FILTER_CODES = lower(["data_inspection_failed", "DataInspectionFailed"]);
const RATE_LIMIT_CODES = lower([
  "limit_requests",
  "limit_burst_rate",
  "Throttling",
  "Throttling.RateQuota",
  "Throttling.RateLimit",
  "Throttling.BurstRate",
]);
const QUOTA_CODES = lower(["insufficient_quota", "Throttling.AllocationQuota"]);
const INVALID_REQUEST_CODES = lower([
  "invalid_parameter_error",
  "invalid_value",
  "InvalidParameter",
  "InternalError.Algo.InvalidParameter",
]);
const MODEL_CODES = lower(["model_not_found", "model_not_supported", "ModelNotFound", "ModelNotSupported"]);
const CREDENTIAL_CODES = lower([
  "invalid_api_key",
  "InvalidApiKey",
  "access_denied",
  "AccessDenied",
  "Model.AccessDenied",
  "AccessDenied.Unpurchased",
  "AllocationQuota.FreeTierOnly",
  "Arrearage",
]);
const SERVER_CODES = lower([
  "internal_error",
  "InternalError",
  "ModelServingError",
  "ModelUnavailable",
  "service_unavailable",
  "RequestTimeOut",
]);

const CREDENTIALS_MESSAGE = "The model provider rejected this service's credentials.";
const SERVER_MESSAGE = "The model provider failed to answer; try again.";

/** Matches DashScope's context-overflow text, e.g. `Range of input length should be [1, 983616]`. */
const INPUT_LENGTH_RE = /Range of input length should be \[\s*\d+\s*,\s*(\d+)\s*\]/i;

/**
 * Makes an upstream message fit to relay: drops the documentation link DashScope appends
 * (` For details, see: https://…`), the native `<400> InternalError.Algo.InvalidParameter: ` prefix,
 * and anything shaped like an API key.
 */
export function cleanUpstreamMessage(message: string): string {
  const cleaned = message
    .replace(/\s*For details,? see:?\s*\S*\s*$/i, "")
    .replace(/^<\d{3}>\s*[\w.]+:\s*/, "")
    .replace(/\bsk-[A-Za-z0-9_-]{4,}/g, "[redacted]")
    .trim();
  return truncateText(cleaned, MAX_RELAYED_MESSAGE_CHARS);
}

const nonEmpty = (value: string | null | undefined): string | null =>
  typeof value === "string" && value.trim() !== "" ? value.trim() : null;

/**
 * Whether `code` or `type` is in `set`, case-insensitively (`Arrearage` vs `arrearage` both occur).
 * A native dotted code also matches by its family: `InternalError.Algo.X` matches `InternalError`.
 */
function matches(set: Set<string>, code: string | null, type: string | null): boolean {
  return [code, type].some((value) => {
    if (value === null) return false;
    const key = value.toLowerCase();
    return set.has(key) || set.has(key.split(".")[0]!);
  });
}

/**
 * Maps a DashScope failure to our error codes (`../shared/API.md` "Errors"; DashScope codes from
 * PROTOCOL.md §3.2). Codes win over statuses, because mid-stream frames and some gateways carry
 * no meaningful status; unknown codes fall back to the status class.
 */
export function mapUpstreamError(input: UpstreamErrorInput): UpstreamError {
  const code = nonEmpty(input.code);
  const type = nonEmpty(input.type);
  const rawMessage = nonEmpty(input.message) ?? "";
  const status = input.status;
  const upstreamRetryAfterMs =
    typeof input.retryAfterMs === "number" && Number.isFinite(input.retryAfterMs) && input.retryAfterMs >= 0
      ? input.retryAfterMs
      : null;
  const base = {
    upstreamStatus: status,
    upstreamCode: code ?? type,
    requestId: nonEmpty(input.requestId),
    phase: input.phase,
  };
  const make = (
    ourStatus: ContentfulStatusCode,
    ourCode: ErrorCode,
    message: string,
    retryable: boolean,
    param?: string,
    retryAfterMs: number | null = null,
  ) => new UpstreamError(ourStatus, ourCode, message, { ...base, retryable, retryAfterMs }, param);
  const rateLimited = (message: string, retryable: boolean) =>
    make(
      429,
      "rate_limited",
      message,
      retryable,
      undefined,
      upstreamRetryAfterMs ?? DEFAULT_RATE_LIMIT_RETRY_AFTER_MS,
    );

  if (code === UPSTREAM_TIMEOUT_CODE) {
    return make(504, "upstream_timeout", "The model provider did not start answering in time.", true);
  }
  if (code === UPSTREAM_NETWORK_CODE) {
    return make(502, "upstream_error", "Could not reach the model provider.", true);
  }

  const inputLength = INPUT_LENGTH_RE.exec(rawMessage);
  if (inputLength) {
    return make(
      400,
      "invalid_request",
      `The conversation is too long for the model's context window (at most ${inputLength[1]} input tokens).`,
      false,
      "messages",
    );
  }
  if (matches(CONTENT_FILTER_CODES, code, type)) {
    const output = /^output/i.test(rawMessage);
    return make(
      422,
      "content_filtered",
      output
        ? "The answer was blocked by the model provider's content moderation."
        : "The request was blocked by the model provider's content moderation.",
      false,
    );
  }
  if (matches(QUOTA_CODES, code, type)) {
    return rateLimited(
      "The model provider's token quota for this service is exhausted; try again later.",
      false,
    );
  }
  if (matches(RATE_LIMIT_CODES, code, type)) {
    return rateLimited("The model provider is rate limiting requests; try again later.", true);
  }
  if (matches(CREDENTIAL_CODES, code, type)) {
    return make(502, "upstream_error", CREDENTIALS_MESSAGE, false);
  }
  if (matches(MODEL_CODES, code, type)) {
    const message = cleanUpstreamMessage(rawMessage) || "The requested model is not available.";
    return make(400, "invalid_request", message, false, "model");
  }
  if (matches(INVALID_REQUEST_CODES, code, type)) {
    const message = cleanUpstreamMessage(rawMessage) || "The model provider rejected a request parameter.";
    return make(400, "invalid_request", message, false);
  }
  if (matches(SERVER_CODES, code, type)) {
    return make(502, "upstream_error", SERVER_MESSAGE, true);
  }

  if (status === 401 || status === 403) return make(502, "upstream_error", CREDENTIALS_MESSAGE, false);
  if (status === 429)
    return rateLimited("The model provider is rate limiting requests; try again later.", true);
  if (status === 408 || status === 504) {
    return make(504, "upstream_timeout", "The model provider did not answer in time.", true);
  }
  if (status !== null && status >= 500) return make(502, "upstream_error", SERVER_MESSAGE, true);
  if (status !== null && status >= 400) {
    return make(502, "upstream_error", "The model provider rejected the request.", false);
  }
  // No status and an unknown code: a stream frame we cannot classify. Not retried blindly.
  return make(502, "upstream_error", "The model provider reported an error.", false);
}

/** The fields of a DashScope error body, read defensively. */
export interface ParsedUpstreamErrorBody {
  code: string | null;
  type: string | null;
  message: string | null;
  requestId: string | null;
}

const str = (value: unknown): string | null =>
  typeof value === "string" ? value : typeof value === "number" ? String(value) : null;

/**
 * Reads an error body of either shape: OpenAI-style `{"error":{code,type,message},"request_id"}`
 * or native `{"code","message","request_id"}`. Key order varies and any field may be missing;
 * a non-JSON body (gateway HTML, empty) yields all `null`s.
 */
export function parseUpstreamErrorBody(text: string): ParsedUpstreamErrorBody {
  const empty: ParsedUpstreamErrorBody = { code: null, type: null, message: null, requestId: null };
  let json: unknown;
  try {
    json = parseWellFormedJson(text);
  } catch {
    return empty;
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return empty;
  const outer = json as Record<string, unknown>;
  const inner =
    typeof outer.error === "object" && outer.error !== null && !Array.isArray(outer.error)
      ? (outer.error as Record<string, unknown>)
      : outer;
  return {
    code: str(inner.code),
    type: str(inner.type),
    message: str(inner.message) ?? (typeof outer.error === "string" ? outer.error : null),
    requestId: str(outer.request_id) ?? str(inner.request_id),
  };
}

/** Maps an error reported inside a 200 stream (PROTOCOL.md §3.4) to our codes; phase `mid-stream`. */
export function upstreamErrorFromStreamError(info: StreamErrorInfo): UpstreamError {
  return mapUpstreamError({
    status: info.status,
    code: info.code,
    message: info.message,
    requestId: info.requestId,
    phase: "mid-stream",
  });
}
