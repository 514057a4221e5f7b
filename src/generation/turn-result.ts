import { ApiError, type ErrorCode, reshardingError } from "../errors/api-error";
import { logError } from "../log/log";
import { isUserMovingError, RESHARD_RETRY_AFTER_SECONDS } from "../store/reshard-routing";

/** A turn's error as it crosses the Durable Object boundary (RPC carries plain data, not classes). */
export interface TurnFailure {
  ok: false;
  error: {
    status: number;
    code: ErrorCode;
    message: string;
    param?: string;
    headers?: Record<string, string>;
  };
  /** The D1 bookmark after what the failed call wrote, when known (store/sessions.ts). */
  d1_bookmark?: string | null;
}

/** Any error → a plain failure; unknown errors never leak details. */
export function failure(err: unknown): TurnFailure {
  if (isUserMovingError(err)) return failure(reshardingError(RESHARD_RETRY_AFTER_SECONDS));
  if (err instanceof ApiError) {
    return {
      ok: false,
      error: {
        status: err.status,
        code: err.code,
        message: err.message,
        ...(err.param ? { param: err.param } : {}),
        ...(err.headers ? { headers: err.headers } : {}),
      },
    };
  }
  logError("turn.failed", { error: err });
  return { ok: false, error: { status: 500, code: "internal_error", message: "Internal error." } };
}

/** The failure back as a throwable error on the Worker side. */
export function toApiError(f: TurnFailure): ApiError {
  const e = f.error;
  return new ApiError(e.status as ApiError["status"], e.code, e.message, e.param, e.headers);
}
