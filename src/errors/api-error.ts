import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ErrorBody, ErrorCode } from "../resources/errors";

export type { ErrorCode } from "../resources/errors";

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

/**
 * 503 `resharding` with `Retry-After`: a write of a user whose rows are being moved to another
 * shard (store/reshard-routing.ts), refused for the seconds of that user's move.
 */
export const reshardingError = (retryAfterSeconds: number) =>
  new ApiError(
    503,
    "resharding",
    "Your data is being moved to another database; retry in a few seconds.",
    undefined,
    { "retry-after": String(retryAfterSeconds) },
  );
