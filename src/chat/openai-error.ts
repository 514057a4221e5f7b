import type { ErrorCode } from "../errors/api-error";

/**
 * OpenAI's error `type` for each of our error codes. The official SDKs pick their exception class
 * from the HTTP status; `type` and `code` are what application code inspects afterwards.
 */
const OPENAI_ERROR_TYPES: Readonly<Record<ErrorCode, string>> = {
  invalid_request: "invalid_request_error",
  unauthorized: "authentication_error",
  forbidden: "permission_error",
  not_found: "invalid_request_error",
  conflict: "invalid_request_error",
  turn_in_progress: "invalid_request_error",
  conversation_deleted: "invalid_request_error",
  sync_expired: "invalid_request_error",
  payload_too_large: "invalid_request_error",
  unsupported_media_type: "invalid_request_error",
  content_filtered: "invalid_request_error",
  rate_limited: "rate_limit_error",
  quota_exceeded: "insufficient_quota",
  upstream_error: "api_error",
  upstream_timeout: "api_error",
  internal_error: "api_error",
  shard_unavailable: "api_error",
  resharding: "api_error",
};

/** The `error` member of OpenAI's error envelope. `code` carries our error code (`../shared/API.md`). */
export interface OpenAiErrorObject {
  message: string;
  type: string;
  param: string | null;
  code: string;
}

/** OpenAI's error envelope: `{"error": {message, type, param, code}}`. */
export interface OpenAiErrorBody {
  error: OpenAiErrorObject;
}

/** OpenAI's error `type` for our error `code`; unknown codes are server-side (`api_error`). */
export function openAiErrorType(code: string): string {
  return (OPENAI_ERROR_TYPES as Record<string, string | undefined>)[code] ?? "api_error";
}

/** Our error (`code`, `message`, optional `param`) in OpenAI's envelope. */
export function toOpenAiErrorBody(error: {
  code: string;
  message: string;
  param?: string | null;
}): OpenAiErrorBody {
  return {
    error: {
      message: error.message,
      type: openAiErrorType(error.code),
      param: error.param ?? null,
      code: error.code,
    },
  };
}
