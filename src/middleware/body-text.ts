import { ApiError, invalidRequest } from "../errors/api-error";

/**
 * The text of a request body, which must be UTF-8 (400 otherwise), read with a size limit: the
 * bytes are counted as they arrive (a `Content-Length` is only a claim), so a client cannot make
 * the Worker buffer more than `maxBytes` (413 `payload_too_large`). A body refused for its size is
 * still read to its end, unbuffered ({@link discardBody}).
 *
 * Hono's `bodyLimit` middleware is not used: it trusts a `Content-Length` without counting the
 * bytes, stops reading at the limit, and buffers the body to hand it on as a new request.
 */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const bytes = await readBodyBytes(request, maxBytes);
  try {
    return UTF8.decode(bytes);
  } catch {
    throw invalidRequest("The request body is not valid UTF-8.");
  }
}

/**
 * The bytes of a request body, read with a size limit as {@link readBodyText} reads them: counted
 * as they arrive, 413 (`tooLarge`, by default `payload_too_large` naming `maxBytes`) past the
 * limit, with the rest of the body read and thrown away.
 */
export async function readBodyBytes(
  request: Request,
  maxBytes: number,
  tooLarge: () => ApiError = () => bodyTooLarge(maxBytes),
): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > maxBytes) {
    await discardBody(request.body?.getReader() ?? null, 0);
    throw tooLarge();
  }
  const body = request.body;
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await discardBody(reader, size);
      throw tooLarge();
    }
    parts.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    bytes.set(p, offset);
    offset += p.byteLength;
  }
  return bytes;
}

/**
 * Most bytes of a refused body read and thrown away: 100 MB, the request body limit of
 * Cloudflare's Free and Pro plans (developers.cloudflare.com/workers/platform/limits/#request-limits),
 * beyond which the edge refuses the request before the Worker sees it anyway.
 */
const MAX_DISCARDED_BYTES = 100_000_000;

/**
 * Reads the rest of a refused request body and throws it away (`alreadyRead` bytes were read), so
 * the client gets the error response rather than a broken connection. Measured with curl and a
 * 10 MB chunked body (limit 1 MiB) behind `wrangler dev`'s proxy: cancelled at the limit, 15 of 30
 * requests got a connection reset or a 500 instead of the 413; read to its end, 30 of 30 got the
 * 413. workerd on its own (Miniflare, direct socket) answered 413 either way, so the proxy in
 * front is what breaks. Past {@link MAX_DISCARDED_BYTES} the body is cancelled.
 * A read that fails (the client went away) ends it quietly: the error response stands.
 */
export async function discardBody(
  reader: ReadableStreamDefaultReader<Uint8Array> | null,
  alreadyRead: number,
): Promise<void> {
  if (!reader) return;
  try {
    let total = alreadyRead;
    while (total <= MAX_DISCARDED_BYTES) {
      const { done, value } = await reader.read();
      if (done) return;
      total += value.byteLength;
    }
    await reader.cancel();
  } catch {
    // The client stopped sending; nothing is left to read.
  }
}

/**
 * Strict UTF-8: a malformed sequence throws instead of becoming U+FFFD, which would be stored and
 * sent upstream as if the client had written it. A leading byte order mark is dropped.
 */
const UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });

const bodyTooLarge = (maxBytes: number) =>
  new ApiError(413, "payload_too_large", `The request body exceeds the limit of ${maxBytes} bytes.`);
