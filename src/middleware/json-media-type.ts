import { ApiError } from "../errors/api-error";

/**
 * `application/json` or a structured `+json` type (`application/merge-patch+json`), any case, as
 * Hono's `validator("json")` recognises them (it silently reads any other type as `{}`).
 */
const JSON_MEDIA_TYPE = /^application\/([\w.-]+\+)?json$/i;

/**
 * A body that is not declared as JSON is refused before it is read (415 `unsupported_media_type`):
 * `text/plain`, a form, or no `Content-Type` at all. A `charset` other than UTF-8 is refused too,
 * as JSON between systems must be UTF-8 (RFC 8259 §8.1) and any other would be misread.
 */
export function checkJsonMediaType(contentType: string | undefined): void {
  const [mediaType = "", ...params] = (contentType ?? "").split(";");
  if (!JSON_MEDIA_TYPE.test(mediaType.trim())) {
    throw new ApiError(
      415,
      "unsupported_media_type",
      "The request body must be JSON, sent with Content-Type: application/json.",
    );
  }
  for (const param of params) {
    const [name = "", value = ""] = param.split("=");
    if (name.trim().toLowerCase() !== "charset") continue;
    if (!/^"?utf-8"?$/i.test(value.trim())) {
      throw new ApiError(415, "unsupported_media_type", "A JSON request body must be encoded as UTF-8.");
    }
  }
}
