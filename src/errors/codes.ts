import type { ContentfulStatusCode } from "hono/utils/http-status";
import { ERROR_CODES, type ErrorCode } from "../resources/errors";

/** The HTTP status each code is sent with (the compiler checks that every code has one). */
const ERROR_STATUS = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  turn_in_progress: 409,
  conversation_deleted: 409,
  sync_expired: 410,
  payload_too_large: 413,
  unsupported_media_type: 415,
  content_filtered: 422,
  rate_limited: 429,
  quota_exceeded: 429,
  upstream_error: 502,
  upstream_timeout: 504,
  internal_error: 500,
  shard_unavailable: 503,
  resharding: 503,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

/** A status some error code is sent with. */
export type ErrorStatus = (typeof ERROR_STATUS)[ErrorCode];

/** The codes sent with `status`, in {@link ERROR_CODES} order. */
export function codesOfStatus(status: ErrorStatus): ErrorCode[] {
  return ERROR_CODES.filter((code) => ERROR_STATUS[code] === status);
}
