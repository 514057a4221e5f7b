import { parseWellFormedJson, truncateText } from "../text/well-formed";
import type { StreamErrorInfo } from "./types";

/** Where an upstream failure happened: before the first body byte (retryable) or inside a 200 stream. */
export type UpstreamPhase = "pre-stream" | "mid-stream";

/** Code the client passes for a first-byte timeout (DashScope has no such code of its own). */
export const UPSTREAM_TIMEOUT_CODE = "edge_chat.first_byte_timeout";
/** Code the client passes for a body that stopped arriving for the idle timeout after its first byte. */
export const UPSTREAM_IDLE_CODE = "edge_chat.idle_timeout";
/** Code the client passes for a connection that failed or closed before an answer arrived. */
export const UPSTREAM_NETWORK_CODE = "edge_chat.network_error";

/**
 * How long to wait after a rate-limit or quota failure when DashScope gave no `Retry-After`: its
 * rate limits "reset typically within one minute" (PROTOCOL.md §7.3).
 */
export const DEFAULT_RATE_LIMIT_RETRY_AFTER_MS = 60_000;

/**
 * Longest upstream message kept as {@link UpstreamFailure.detail} (invalid-parameter texts are
 * short; this bounds odd ones).
 */
const MAX_RELAYED_MESSAGE_CHARS = 500;

/** What is known about one upstream failure, before it is classified. */
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

/**
 * The kinds of DashScope failure (PROTOCOL.md §3.2), in the order they are recognised:
 * - `first_byte_timeout`: no first body byte within the client's budget;
 * - `idle_timeout`: the body started, then nothing more came within the client's idle timeout;
 * - `network`: the connection failed or closed before an answer arrived;
 * - `context_overflow`: the input is longer than the model's window
 *   ({@link UpstreamFailure.maxInputTokens});
 * - `content_filtered`: moderation blocked the request or the answer
 *   ({@link UpstreamFailure.moderated});
 * - `quota_exhausted`: the account's token quota is used up;
 * - `rate_limited`: too many requests (a code of the family, or HTTP 429);
 * - `credentials`: the API key or the account was refused (a code of the family, or HTTP 401/403);
 * - `model_unavailable`: no such model, or not in compatible mode;
 * - `invalid_parameter`: DashScope rejected a request parameter;
 * - `server`: DashScope failed to answer (a serving code, or HTTP 5xx other than 504);
 * - `timeout`: DashScope or a gateway timed out (HTTP 408, 504);
 * - `rejected`: another HTTP 4xx without a known code;
 * - `unknown`: no status and an unknown code (a stream frame that cannot be classified).
 */
type UpstreamFailureKind =
  | "first_byte_timeout"
  | "idle_timeout"
  | "network"
  | "context_overflow"
  | "content_filtered"
  | "quota_exhausted"
  | "rate_limited"
  | "credentials"
  | "model_unavailable"
  | "invalid_parameter"
  | "server"
  | "timeout"
  | "rejected"
  | "unknown";

/** The fields of an {@link UpstreamFailure} (documented here, for the class too). */
interface UpstreamFailureFields {
  kind: UpstreamFailureKind;
  /** HTTP status of DashScope's response; `null` for timeouts, network failures and OpenAI-shape stream frames. */
  status: number | null;
  /** DashScope's error code (else its error `type`), as sent; `null` when it sent neither. */
  code: string | null;
  /** DashScope's request id (body `request_id`, else the `x-request-id` header). */
  requestId: string | null;
  /** Whether sending the same request again may succeed (rate limit, 5xx, timeout, network). */
  retryable: boolean;
  /**
   * For `rate_limited` and `quota_exhausted`: how long to wait before trying again, in
   * milliseconds (DashScope's `Retry-After`, else {@link DEFAULT_RATE_LIMIT_RETRY_AFTER_MS}). `null` otherwise.
   */
  retryAfterMs: number | null;
  phase: UpstreamPhase;
  /**
   * DashScope's own message after {@link cleanUpstreamMessage} (no documentation link, no native
   * prefix, nothing shaped like an API key), or `null` when it sent none. Fit for logs; fit to
   * show a client only for `invalid_parameter` and `model_unavailable`, whose words are about the request.
   */
  detail: string | null;
  /** For `context_overflow`: the model's input limit in tokens, as DashScope's message states it. */
  maxInputTokens: number | null;
  /** For `content_filtered`: whether the request (`input`) or the answer (`output`) was blocked. */
  moderated: "input" | "output" | null;
}

/**
 * A DashScope failure as a typed value: what kind it is, whether a retry may succeed, and what
 * DashScope said, for logs and retry decisions. It carries no HTTP status or error code of this
 * service; the layers above map it to theirs (`chat/upstream-error.ts`). The client rejects with it.
 */
export class UpstreamFailure extends Error implements UpstreamFailureFields {
  readonly kind: UpstreamFailureKind;
  readonly status: number | null;
  readonly code: string | null;
  readonly requestId: string | null;
  readonly retryable: boolean;
  readonly retryAfterMs: number | null;
  readonly phase: UpstreamPhase;
  readonly detail: string | null;
  readonly maxInputTokens: number | null;
  readonly moderated: "input" | "output" | null;
  /** Attempts made before giving up; set by the client. */
  attempts = 1;

  constructor(fields: UpstreamFailureFields) {
    const context = [fields.status !== null ? `HTTP ${fields.status}` : null, fields.code].filter(Boolean);
    super(`DashScope ${fields.kind}${context.length > 0 ? ` (${context.join(", ")})` : ""}`);
    this.name = "UpstreamFailure";
    this.kind = fields.kind;
    this.status = fields.status;
    this.code = fields.code;
    this.requestId = fields.requestId;
    this.retryable = fields.retryable;
    this.retryAfterMs = fields.retryAfterMs;
    this.phase = fields.phase;
    this.detail = fields.detail;
    this.maxInputTokens = fields.maxInputTokens;
    this.moderated = fields.moderated;
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
 * Classifies a DashScope failure (DashScope codes from PROTOCOL.md §3.2). Codes win over
 * statuses, because mid-stream frames and some gateways carry no meaningful status; unknown
 * codes fall back to the status class.
 */
export function classifyUpstreamError(input: UpstreamErrorInput): UpstreamFailure {
  const code = nonEmpty(input.code);
  const type = nonEmpty(input.type);
  const rawMessage = nonEmpty(input.message) ?? "";
  const status = input.status;
  const upstreamRetryAfterMs =
    typeof input.retryAfterMs === "number" && Number.isFinite(input.retryAfterMs) && input.retryAfterMs >= 0
      ? input.retryAfterMs
      : null;
  const make = (
    kind: UpstreamFailureKind,
    retryable: boolean,
    extra: Partial<Pick<UpstreamFailureFields, "retryAfterMs" | "maxInputTokens" | "moderated">> = {},
  ) =>
    new UpstreamFailure({
      kind,
      status,
      code: code ?? type,
      requestId: nonEmpty(input.requestId),
      retryable,
      retryAfterMs: extra.retryAfterMs ?? null,
      phase: input.phase,
      detail: cleanUpstreamMessage(rawMessage) || null,
      maxInputTokens: extra.maxInputTokens ?? null,
      moderated: extra.moderated ?? null,
    });
  const throttled = (kind: "rate_limited" | "quota_exhausted", retryable: boolean) =>
    make(kind, retryable, { retryAfterMs: upstreamRetryAfterMs ?? DEFAULT_RATE_LIMIT_RETRY_AFTER_MS });

  if (code === UPSTREAM_TIMEOUT_CODE) return make("first_byte_timeout", true);
  if (code === UPSTREAM_IDLE_CODE) return make("idle_timeout", true);
  if (code === UPSTREAM_NETWORK_CODE) return make("network", true);

  const inputLength = INPUT_LENGTH_RE.exec(rawMessage);
  if (inputLength) return make("context_overflow", false, { maxInputTokens: Number(inputLength[1]) });
  if (matches(CONTENT_FILTER_CODES, code, type)) {
    return make("content_filtered", false, { moderated: /^output/i.test(rawMessage) ? "output" : "input" });
  }
  if (matches(QUOTA_CODES, code, type)) return throttled("quota_exhausted", false);
  if (matches(RATE_LIMIT_CODES, code, type)) return throttled("rate_limited", true);
  if (matches(CREDENTIAL_CODES, code, type)) return make("credentials", false);
  if (matches(MODEL_CODES, code, type)) return make("model_unavailable", false);
  if (matches(INVALID_REQUEST_CODES, code, type)) return make("invalid_parameter", false);
  if (matches(SERVER_CODES, code, type)) return make("server", true);

  if (status === 401 || status === 403) return make("credentials", false);
  if (status === 429) return throttled("rate_limited", true);
  if (status === 408 || status === 504) return make("timeout", true);
  if (status !== null && status >= 500) return make("server", true);
  if (status !== null && status >= 400) return make("rejected", false);
  // No status and an unknown code: a stream frame we cannot classify. Not retried blindly.
  return make("unknown", false);
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

/** Classifies an error reported inside a 200 stream (PROTOCOL.md §3.4); phase `mid-stream`. */
export function classifyStreamError(info: StreamErrorInfo): UpstreamFailure {
  return classifyUpstreamError({
    status: info.status,
    code: info.code,
    message: info.message,
    requestId: info.requestId,
    phase: "mid-stream",
  });
}
