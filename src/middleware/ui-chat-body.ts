import { JSONParser } from "@streamparser/json";
import type { Context } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError, invalidRequest } from "../errors/api-error";
import { checkJsonInput } from "../errors/invalid-request";
import { discardBody } from "./body-text";
import { jsonMediaTypeProblem } from "./json-media-type";

/** The AI SDK chat request as read: its top-level fields, and its last message alone. */
export interface UiChatBody {
  /** Every top-level field but `messages` and `message`. */
  fields: Record<string, unknown>;
  /** The last element of `messages`, or `message`. */
  message: unknown;
  /** Where it was: `messages.<index>` or `message`, for errors. */
  messageField: string;
}

/** The top-level fields kept: `messages` is read element by element, anything else is ignored. */
const FIELDS = ["id", "trigger", "messageId", "message", "model", "parameters"] as const;

/**
 * Reads the body of `POST /v1/ui/conversations`. The stock `useChat` posts the whole history
 * with every send, images as data URLs included, so the body may be large
 * (`MAX_UI_CHAT_BODY_BYTES`, 413 above it) while only its last message counts: the body is
 * parsed as it arrives (`@streamparser/json`, a streaming parser: buffering the text and
 * `JSON.parse` would hold the whole history as objects in the isolate's 128 MB) and each
 * element of `messages` is dropped as soon as the next one starts. Otherwise as `jsonBody`:
 * 415 for a type that is not JSON, 400 for malformed UTF-8 or JSON, for a root that is not an
 * object and for nesting or text `checkJsonInput` refuses.
 */
export async function readUiChatBody(c: Context<AppEnv>): Promise<UiChatBody> {
  const request = c.req.raw;
  const maxBytes = c.get("config").maxUiChatBodyBytes;
  const reader = request.body?.getReader() ?? null;
  const refused = reader ? jsonMediaTypeProblem(request.headers.get("content-type")) : null;
  if (refused) {
    await discardBody(reader, 0);
    throw refused;
  }
  if (Number(request.headers.get("content-length") ?? "NaN") > maxBytes) {
    await discardBody(reader, 0);
    throw tooLarge(maxBytes);
  }
  const fields: Record<string, unknown> = {};
  // Set from the parser's callbacks.
  const seen: { last: { value: unknown; index: number } | null; problem: Error | null } = {
    last: null,
    problem: null,
  };
  let rootIsObject: boolean | null = null;
  const parser = new JSONParser({
    paths: [...FIELDS.map((f) => `$.${f}`), "$.messages.*"],
    // Emitted values are not kept in their parents: `messages` never holds the history.
    keepStack: false,
  });
  parser.onValue = ({ value, key, stack }) => {
    if (stack.length === 2 && typeof key === "number") seen.last = { value, index: key };
    else if (stack.length === 1 && typeof key === "string") fields[key] = value;
  };
  parser.onError = (err) => {
    seen.problem ??= err;
  };
  const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false });
  let size = 0;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await discardBody(reader, size);
        throw tooLarge(maxBytes);
      }
      if (seen.problem) continue;
      let text: string;
      try {
        text = utf8.decode(value, { stream: true });
      } catch {
        await discardBody(reader, size);
        throw invalidRequest("The request body is not valid UTF-8.");
      }
      rootIsObject ??= rootOf(text);
      if (rootIsObject === true && text !== "") parser.write(text);
    }
  }
  try {
    const tail = utf8.decode();
    if (rootIsObject === true && !seen.problem && tail !== "") parser.write(tail);
  } catch {
    throw invalidRequest("The request body is not valid UTF-8.");
  }
  if (rootIsObject === null) throw invalidRequest("A JSON request body is required.");
  if (rootIsObject === false) throw invalidRequest("The request body must be a JSON object.");
  if (seen.problem || !parser.isEnded) throw invalidRequest("The request body is not valid JSON.");
  const { message: single, ...rest } = fields;
  const found = seen.last;
  const message = single !== undefined ? single : found?.value;
  if (message === undefined)
    throw invalidRequest(
      "The request has no message: send messages (the last one is read) or message.",
      "messages",
    );
  checkJsonInput(rest);
  checkJsonInput(message);
  return {
    fields: rest,
    message,
    messageField: single !== undefined || !found ? "message" : `messages.${found.index}`,
  };
}

/** Whether the first non-blank character of the body is `{` (null: none yet). */
function rootOf(text: string): boolean | null {
  const first = text.trimStart()[0];
  return first === undefined ? null : first === "{";
}

const tooLarge = (maxBytes: number) =>
  new ApiError(413, "payload_too_large", `The request body exceeds the limit of ${maxBytes} bytes.`);
