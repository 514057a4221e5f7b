import type { Error as ErrorBody } from "./generated";

/**
 * An edge-chat error response (`{ error: { code, message, param? } }`), or a connection that could
 * not be re-established (`status` 0, `code` `connection_lost`).
 */
export class EdgeChatError extends Error {
  override readonly name = "EdgeChatError";
  constructor(
    /** HTTP status; 0 when no response was received. */
    readonly status: number,
    /** edge-chat's error code (`rate_limited`, `turn_in_progress`, …) or `connection_lost`. */
    readonly code: string,
    message: string,
    /** The request field at fault, when the server named one. */
    readonly param: string | null = null,
    /** `Retry-After` in seconds, when sent (429). */
    readonly retryAfterSeconds: number | null = null,
  ) {
    super(message);
  }
}

function isErrorBody(value: unknown): value is ErrorBody {
  if (typeof value !== "object" || value === null || !("error" in value)) return false;
  const error = value.error;
  return typeof error === "object" && error !== null && "code" in error && "message" in error;
}

/** The {@link EdgeChatError} of a non-2xx response (its body is read). */
export async function errorOf(response: Response): Promise<EdgeChatError> {
  let body: unknown = null;
  try {
    body = await response.json();
  } catch {
    // Not JSON (a proxy's error page): the status alone says what happened.
  }
  const retryAfter = Number(response.headers.get("retry-after"));
  const retryAfterSeconds = Number.isFinite(retryAfter) && retryAfter > 0 ? retryAfter : null;
  if (isErrorBody(body)) {
    const { code, message, param } = body.error;
    return new EdgeChatError(response.status, code, message, param ?? null, retryAfterSeconds);
  }
  return new EdgeChatError(response.status, "http_error", `HTTP ${response.status}`, null, retryAfterSeconds);
}
