import { ApiError, invalidRequest } from "../errors/api-error";

/**
 * The text of a request body, which must be UTF-8 (400 otherwise), read with a size limit: the bytes are counted as they arrive
 * (a `Content-Length` is only a claim), so a client cannot make the Worker buffer more than
 * `maxBytes` (413 `payload_too_large`). A declared length over the limit is refused unread.
 *
 * Hono's `bodyLimit` middleware is not used: it trusts a `Content-Length` without counting the
 * bytes, and buffers the body to hand it on as a new request.
 */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const body = request.body;
  if (!body) return "";
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
  try {
    return UTF8.decode(bytes);
  } catch {
    throw invalidRequest("The request body is not valid UTF-8.");
  }
}

/**
 * Strict UTF-8: a malformed sequence throws instead of becoming U+FFFD, which would be stored and
 * sent upstream as if the client had written it. A leading byte order mark is dropped.
 */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

const tooLarge = (maxBytes: number) =>
  new ApiError(413, "payload_too_large", `The request body exceeds the limit of ${maxBytes} bytes.`);
