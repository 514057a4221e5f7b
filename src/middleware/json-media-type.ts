import { ApiError } from "../errors/api-error";

/**
 * `application/json` or a structured `+json` type (`application/merge-patch+json`), any case, as
 * Hono's `validator("json")` recognises them (it silently reads any other type as `{}`).
 */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * Why a body with this `Content-Type` is not read as JSON (415 `unsupported_media_type`), or
 * `null` when it is: `text/plain`, a form or no `Content-Type` at all are refused, and so is a
 * `charset` other than UTF-8, as JSON between systems must be UTF-8 (RFC 8259 §8.1).
 */
export function jsonMediaTypeProblem(contentType: string | null): ApiError | null {
  const [mediaType = "", ...params] = (contentType ?? "").split(";");
  if (!JSON_MEDIA_TYPE.test(mediaType.trim())) {
    return new ApiError(
      415,
      "unsupported_media_type",
      "The request body must be JSON, sent with Content-Type: application/json.",
    );
  }
  for (const param of params) {
    const [name = "", value = ""] = param.split("=");
    if (name.trim().toLowerCase() !== "charset") continue;
    if (!/^"?utf-8"?$/i.test(value.trim())) {
      return new ApiError(415, "unsupported_media_type", "A JSON request body must be encoded as UTF-8.");
    }
  }
  return null;
}
