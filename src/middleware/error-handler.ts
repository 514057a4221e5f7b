import type { Context, ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import type { AppEnv } from "../app-env";
import { ApiError, reshardingError } from "../errors/api-error";
import { logError } from "../log/log";
import { isUserMovingError, RESHARD_RETRY_AFTER_SECONDS } from "../store/reshard-routing";

/**
 * Turns every thrown error into the JSON error envelope; unknown errors never leak details. The
 * response carries `X-Request-Id`, as successful ones do, so a client's report of an error can be
 * matched to its log lines (the error handler's response replaces the one `requestId()` set it on).
 */
export const onError: ErrorHandler<AppEnv> = (err, c) => withRequestId(c, errorResponse(err));

function errorResponse(err: Error): Response {
  if (err instanceof ApiError) return err.toResponse();
  if (isUserMovingError(err)) return reshardingError(RESHARD_RETRY_AFTER_SECONDS).toResponse();
  if (err instanceof HTTPException) {
    const code =
      err.status === 401 ? "unauthorized" : err.status === 413 ? "payload_too_large" : "invalid_request";
    return new ApiError(err.status, code, err.message || "Request rejected.").toResponse();
  }
  logError("request.failed", { error: err });
  return new ApiError(500, "internal_error", "Internal error.").toResponse();
}

/** 404 for unknown routes, in the same envelope. */
export const onNotFound: NotFoundHandler<AppEnv> = (c) =>
  withRequestId(
    c,
    new ApiError(
      404,
      "not_found",
      `No route for ${c.req.method} ${new URL(c.req.url).pathname}.`,
    ).toResponse(),
  );

function withRequestId(c: Context<AppEnv>, res: Response): Response {
  const id = c.get("requestId");
  if (id) res.headers.set("x-request-id", id);
  return res;
}
