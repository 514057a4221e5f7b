import type { ErrorHandler, NotFoundHandler } from "hono";
import { HTTPException } from "hono/http-exception";
import { ApiError } from "../errors/api-error";
import { logError } from "../log/log";

/** Turns every thrown error into the JSON error envelope; unknown errors never leak details. */
export const onError: ErrorHandler = (err) => {
  if (err instanceof ApiError) return err.toResponse();
  if (err instanceof HTTPException) {
    const code =
      err.status === 401 ? "unauthorized" : err.status === 413 ? "payload_too_large" : "invalid_request";
    return new ApiError(err.status, code, err.message || "Request rejected.").toResponse();
  }
  logError("request.failed", { error: err });
  return new ApiError(500, "internal_error", "Internal error.").toResponse();
};

/** 404 for unknown routes, in the same envelope. */
export const onNotFound: NotFoundHandler = (c) =>
  new ApiError(404, "not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}.`).toResponse();
