import type { Context } from "hono";
import { ApiError, invalidRequest } from "../errors/api-error";

/**
 * Reads a JSON request body with a size limit. The limit is checked on the bytes as they
 * arrive, so a client cannot make the Worker buffer more than `maxBytes` (413 `payload_too_large`).
 */
export async function readJsonBody(c: Context, maxBytes: number): Promise<unknown> {
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
