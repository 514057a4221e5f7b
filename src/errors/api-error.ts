import type { ContentfulStatusCode } from "hono/utils/http-status";

/** The error codes of the HTTP contract (`../shared/API.md`, "Errors"). */
export type ErrorCode =
  | "invalid_request"
  | "unauthorized"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "turn_in_progress"
  | "payload_too_large"
  | "content_filtered"
  | "rate_limited"
  | "quota_exceeded"
  | "upstream_error"
  | "upstream_timeout"
  | "internal_error";

/** The JSON body of every error response: `{ "error": { code, message, param? } }`. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; param?: string };
}

/**
 * An error that becomes a JSON error response. Throw it anywhere below the routes;
 * the error handler turns it into `{ error: { code, message, param? } }` with `status`.
 */
export class ApiError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly param?: string,
    /** Extra response headers, e.g. `Retry-After`. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
    this.name = "ApiError";
  }

  /** The response body of this error. */
  toBody(): ErrorBody {
    return {
      error: { code: this.code, message: this.message, ...(this.param ? { param: this.param } : {}) },
    };
  }

  /** A JSON response for this error. */
  toResponse(): Response {
    return Response.json(this.toBody(), { status: this.status, headers: this.headers });
  }
}

/** 400 `invalid_request`, naming the field at fault where there is one. */
export const invalidRequest = (message: string, param?: string) =>
  new ApiError(400, "invalid_request", message, param);

/** 404 `not_found`: also what another user's resource looks like. */
export const notFound = (what: string) => new ApiError(404, "not_found", `${what} not found.`);
