import { classifyStreamError, UpstreamFailure } from "../dashscope/errors";
import type { StreamErrorInfo } from "../dashscope/types";
import { ApiError, type ErrorCode } from "../errors/api-error";

/** What a client of ours is told about an upstream failure. */
interface Answer {
  status: ApiError["status"];
  code: ErrorCode;
  message: string;
  param?: string;
}

const CREDENTIALS_MESSAGE = "The model provider rejected this service's credentials.";
const SERVER_MESSAGE = "The model provider failed to answer; try again.";
const RATE_LIMITED_MESSAGE = "The model provider is rate limiting requests; try again later.";

/**
 * Our answer to each kind of DashScope failure (`../shared/API.md` "Errors"). The messages are
 * safe to send to mobile clients: they never repeat DashScope's words about credentials, and
 * relay its words (already cleaned of links and key-shaped text) only about the request itself.
 */
function answerFor(failure: UpstreamFailure): Answer {
  switch (failure.kind) {
    case "first_byte_timeout":
      return {
        status: 504,
        code: "upstream_timeout",
        message: "The model provider did not start answering in time.",
      };
    case "idle_timeout":
      return {
        status: 504,
        code: "upstream_timeout",
        message: "The model provider stopped sending its answer.",
      };
    case "network":
      return { status: 502, code: "upstream_error", message: "Could not reach the model provider." };
    case "context_overflow":
      return {
        status: 400,
        code: "invalid_request",
        message: `The conversation is too long for the model's context window (at most ${failure.maxInputTokens} input tokens).`,
        param: "messages",
      };
    case "content_filtered":
      return {
        status: 422,
        code: "content_filtered",
        message:
          failure.moderated === "output"
            ? "The answer was blocked by the model provider's content moderation."
            : "The request was blocked by the model provider's content moderation.",
      };
    case "quota_exhausted":
      return {
        status: 429,
        code: "rate_limited",
        message: "The model provider's token quota for this service is exhausted; try again later.",
      };
    case "rate_limited":
      return { status: 429, code: "rate_limited", message: RATE_LIMITED_MESSAGE };
    case "credentials":
      return { status: 502, code: "upstream_error", message: CREDENTIALS_MESSAGE };
    case "model_unavailable":
      return {
        status: 400,
        code: "invalid_request",
        message: failure.detail ?? "The requested model is not available.",
        param: "model",
      };
    case "invalid_parameter":
      return {
        status: 400,
        code: "invalid_request",
        message: failure.detail ?? "The model provider rejected a request parameter.",
      };
    case "server":
      return { status: 502, code: "upstream_error", message: SERVER_MESSAGE };
    case "timeout":
      return { status: 504, code: "upstream_timeout", message: "The model provider did not answer in time." };
    case "rejected":
      return { status: 502, code: "upstream_error", message: "The model provider rejected the request." };
    case "unknown":
      return { status: 502, code: "upstream_error", message: "The model provider reported an error." };
  }
}

/**
 * A DashScope failure as our error response: `status`/`code`/`message`/`param` from
 * {@link answerFor}, and `Retry-After` (whole seconds, at least 1) whenever the failure says how
 * long to wait. The `upstream*` fields and `retryable`/`phase`/`attempts` are the failure's, for logs.
 */
export class UpstreamError extends ApiError {
  readonly upstreamStatus: number | null;
  readonly upstreamCode: string | null;
  readonly requestId: string | null;
  readonly retryable: boolean;
  /** How long the caller should wait, in ms (mirrored in `Retry-After`); `null` when not throttled. */
  readonly retryAfterMs: number | null;
  readonly phase: UpstreamFailure["phase"];
  readonly attempts: number;

  constructor(failure: UpstreamFailure) {
    const answer = answerFor(failure);
    const headers =
      failure.retryAfterMs !== null
        ? { "Retry-After": String(Math.max(1, Math.ceil(failure.retryAfterMs / 1000))) }
        : undefined;
    super(answer.status, answer.code, answer.message, answer.param, headers);
    this.name = "UpstreamError";
    this.upstreamStatus = failure.status;
    this.upstreamCode = failure.code;
    this.requestId = failure.requestId;
    this.retryable = failure.retryable;
    this.retryAfterMs = failure.retryAfterMs;
    this.phase = failure.phase;
    this.attempts = failure.attempts;
  }
}

/** `error` as our error when it is a DashScope failure; anything else (an abort's reason, a bug) as it is. */
export function fromUpstreamFailure(error: unknown): unknown {
  return error instanceof UpstreamFailure ? new UpstreamError(error) : error;
}

/** Our error for an error DashScope reported inside a 200 stream (PROTOCOL.md §3.4). */
export function upstreamErrorFromStreamError(info: StreamErrorInfo): UpstreamError {
  return new UpstreamError(classifyStreamError(info));
}
