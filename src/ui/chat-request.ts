/**
 * The Vercel AI SDK's chat request (`DefaultChatTransport`: `{id, messages, trigger, messageId,
 * ...body}`, or `{id, message}` as its resume guide's `prepareSendMessagesRequest` sends it) as
 * what edge-chat sends: only the last message is read (`../shared/API.md` §2.5).
 */
import * as z from "zod";
import { textContentSchema } from "../dashscope/schema";
import { invalidRequest } from "../errors/api-error";
import { parseBody } from "../errors/invalid-request";

/**
 * A `UIMessage` id edge-chat accepts: the AI SDK's own (16 letters and digits) and edge-chat's
 * message ids fit. No `:`, so that an id never looks like an edit's
 * (`store/client-messages.ts`); at most 96 characters, so an edit's `client_message_id`
 * (`<id>:edit:` and 24 hex digits) stays within the 128 of `client_message_id`.
 */
const UI_MESSAGE_ID = /^[A-Za-z0-9._-]{1,96}$/;

/**
 * The file part URL that names a file uploaded with `POST /v1/files`: `edge-chat-file:<file id>`.
 * Such a part becomes the content part `{"type":"file","file":{"file_id"}}`.
 */
export const FILE_URL_SCHEME = "edge-chat-file:";

/** The request's own fields (`...body` may carry more; `model` and `parameters` are read too). */
export const uiChatRequestSchema = z.object({
  id: z.string(),
  trigger: z.enum(["submit-message", "regenerate-message"]).optional(),
  messageId: z.string().nullish(),
  model: z.string().min(1).max(100).optional(),
  parameters: z.unknown().optional(),
});

const uiMessageSchema = z.object({
  id: z.string().regex(UI_MESSAGE_ID, "must be 1-96 letters, digits or ._-"),
  role: z.enum(["user", "assistant"]),
  parts: z.array(z.looseObject({ type: z.string() })).max(1000),
});

export type UiMessage = z.infer<typeof uiMessageSchema>;

const textPartSchema = z.object({ type: z.literal("text"), text: z.string() });
const filePartSchema = z.object({ type: z.literal("file"), mediaType: z.string(), url: z.string() });
const toolPartSchema = z.object({
  toolCallId: z.string(),
  state: z.string(),
  output: z.unknown().optional(),
  errorText: z.string().optional(),
});

/** The last message, validated; `field` names it in errors (`messages.3`, or `message`). */
export function parseUiMessage(value: unknown, field: string): UiMessage {
  return parseBody(uiMessageSchema, value, field);
}

/**
 * A user message's content: its text and file parts in order (one text part alone is a string).
 * A file part is an uploaded file (`edge-chat-file:<id>`) or an image by `data:` or `https:` URL
 * (an `image_url` part). `data-*` and `step-start` parts are the app's or the SDK's own and are
 * skipped; any other part is 400. The route validates the result as a turn's content
 * (`turnContentSchema`, which takes the file part) and names errors `<field>.parts`.
 */
export function userContentOf(message: UiMessage, field: string): string | ContentPart[] {
  const parts: ContentPart[] = [];
  message.parts.forEach((part, i) => {
    const param = `${field}.parts.${i}`;
    if (part.type === "text") {
      const text = parseBody(textPartSchema, part, param).text;
      if (text !== "") parts.push({ type: "text", text });
    } else if (part.type === "file") {
      parts.push(filePart(parseBody(filePartSchema, part, param), param));
    } else if (part.type !== "step-start" && !part.type.startsWith("data-")) {
      throw invalidRequest(
        `A user message's part must be text or a file, not "${part.type}".`,
        `${param}.type`,
      );
    }
  });
  if (parts.length === 0) throw invalidRequest("The message has no text and no file.", `${field}.parts`);
  const only = parts[0];
  return parts.length === 1 && only?.type === "text" ? only.text : parts;
}

/** A content part as a turn takes it (validated by `turnContentSchema` once assembled). */
type ContentPart =
  | { type: "text"; text: string }
  | { type: "file"; file: { file_id: string } }
  | { type: "image_url"; image_url: { url: string } };

function filePart(part: z.infer<typeof filePartSchema>, param: string): ContentPart {
  if (part.url.startsWith(FILE_URL_SCHEME)) {
    const fileId = part.url.slice(FILE_URL_SCHEME.length);
    if (fileId === "") throw invalidRequest("The file URL names no file.", `${param}.url`);
    return { type: "file", file: { file_id: fileId } };
  }
  if (!part.mediaType.startsWith("image/"))
    throw invalidRequest(
      `Only images are sent by URL; upload other files and send ${FILE_URL_SCHEME}<id>.`,
      `${param}.mediaType`,
    );
  return { type: "image_url", image_url: { url: part.url } };
}

/** A tool result as a turn's `tool_results` takes it. */
export interface UiToolResult {
  tool_call_id: string;
  content: string;
}

/**
 * The outputs an app added to the last answer's tool calls (`addToolOutput`): the tool parts of
 * the message's last step with state `output-available` (a string output as is, any other as its
 * JSON) or `output-error` (`{"error": errorText}`); 400 when there is none.
 */
export function toolResultsOf(message: UiMessage, field: string): UiToolResult[] {
  const lastStep = message.parts.findLastIndex((p) => p.type === "step-start");
  const results: UiToolResult[] = [];
  message.parts.forEach((part, i) => {
    if (i < lastStep || !(part.type.startsWith("tool-") || part.type === "dynamic-tool")) return;
    const tool = parseBody(toolPartSchema, part, `${field}.parts.${i}`);
    let content: string | undefined;
    if (tool.state === "output-available")
      content = typeof tool.output === "string" ? tool.output : JSON.stringify(tool.output ?? null);
    else if (tool.state === "output-error") content = JSON.stringify({ error: tool.errorText ?? "" });
    if (content === undefined) return;
    parseBody(textContentSchema, content, `${field}.parts.${i}.output`);
    results.push({ tool_call_id: tool.toolCallId, content });
  });
  if (results.length === 0)
    throw invalidRequest(
      "The last message is an answer with no tool output to send (addToolOutput adds them).",
      `${field}.parts`,
    );
  return results;
}
