import type { Context } from "hono";
import { ApiError, invalidRequest } from "../errors/api-error";

/**
 * Reads a JSON request body with a size limit. The limit is checked on the bytes as they
 * arrive, so a client cannot make the Worker buffer more than `maxBytes` (413 `payload_too_large`).
 */
export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
  if (c.req.raw.body !== null) checkJsonMediaType(c.req.header("content-type"));
  const declared = Number(c.req.header("content-length") ?? "NaN");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const body = c.req.raw.body;
  if (!body) throw invalidRequest("A JSON request body is required.");
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      throw tooLarge(maxBytes);
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    bytes.set(p, offset);
    offset += p.byteLength;
  }
  const text = new TextDecoder().decode(bytes);
  if (text.trim() === "") throw invalidRequest("A JSON request body is required.");
  try {
    return JSON.parse(text);
  } catch {
    throw invalidRequest("The request body is not valid JSON.");
  }
}

const tooLarge = (maxBytes: number) =>
  new ApiError(413, "payload_too_large", `The request body exceeds the limit of ${maxBytes} bytes.`);

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
function checkJsonMediaType(contentType: string | undefined): void {
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
