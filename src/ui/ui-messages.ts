/**
 * Stored messages as the Vercel AI SDK's `UIMessage` objects (`ai` 7.0.x `UIMessage`,
 * `UIMessagePart`), to hydrate `useChat` (`GET /v1/ui/conversations/{id}/messages`). They take the
 * shape the UI message stream ({@link ./ui-message-stream}) gives the same answers while they
 * stream, so a hydrated chat and a live one look alike: an answer is a step (`step-start`,
 * reasoning, text, tool parts); an answer to tool results continues the assistant message of the
 * calls as its next step (under the first answer's id, as the live stream keeps it), and each
 * result is its call's output. `metadata.message_id` is the newest answer's id.
 */
import type { JsonValue } from "../resources/json";
import type { Message } from "../resources/message";
import { FILE_URL_SCHEME } from "./chat-request";
import type { UiMessageMetadata } from "./chunks";

type UiPart =
  | { type: "step-start" }
  | { type: "text"; text: string; state: "done" }
  | { type: "reasoning"; id: string; text: string; state: "done" }
  | { type: "file"; mediaType: string; url: string }
  | UiToolPart;

interface UiToolPart {
  type: `tool-${string}`;
  toolCallId: string;
  state: "input-available" | "output-available" | "output-error";
  input: JsonValue;
  output?: JsonValue;
  errorText?: string;
}

/** A `UIMessage`. */
export interface UiMessageView {
  id: string;
  role: "user" | "assistant";
  parts: UiPart[];
  metadata?: UiMessageMetadata;
}

/** The messages of a path, oldest first, as `UIMessage`s (system messages are not shown). */
export function toUiMessages(path: readonly Message[]): UiMessageView[] {
  const out: UiMessageView[] = [];
  let previous: Message | null = null;
  for (const m of path) {
    const current = out.at(-1);
    if (m.role === "user") {
      out.push({ id: m.id, role: "user", parts: contentParts(m.content) });
    } else if (m.role === "assistant") {
      const parts = answerParts(m);
      const metadata: UiMessageMetadata = {
        conversation_id: m.conversation_id,
        message_id: m.id,
        status: m.status,
        finish_reason: m.finish_reason,
        model: m.model,
        usage: m.usage,
        error: m.error,
      };
      if (previous?.role === "tool" && current?.role === "assistant") {
        current.parts.push(...parts);
        current.metadata = metadata;
      } else {
        out.push({ id: m.id, role: "assistant", parts, metadata });
      }
    } else if (m.role === "tool" && current?.role === "assistant") {
      const call = current.parts.find(
        (p): p is UiToolPart => "toolCallId" in p && p.toolCallId === m.tool_call_id,
      );
      if (call) {
        call.state = "output-available";
        call.output = toolOutput(m.content);
      }
    }
    previous = m;
  }
  return out;
}

/** One answer as a step. */
function answerParts(m: Message): UiPart[] {
  const parts: UiPart[] = [{ type: "step-start" }];
  // The id the stream gives it: reasoning comes first in an answer (DashScope streams it first).
  if (m.reasoning_content)
    parts.push({ type: "reasoning", id: "reasoning-0", text: m.reasoning_content, state: "done" });
  const text = typeof m.content === "string" ? m.content : textOf(m.content);
  if (text) parts.push({ type: "text", text, state: "done" });
  for (const call of m.tool_calls ?? []) {
    let input: JsonValue;
    try {
      input = JSON.parse(call.function.arguments) as JsonValue;
    } catch {
      input = call.function.arguments;
    }
    parts.push({ type: `tool-${call.function.name}`, toolCallId: call.id, state: "input-available", input });
  }
  return parts;
}

/**
 * A user message's content as text and file parts: an uploaded file is `edge-chat-file:<id>`, an
 * image by URL keeps its URL. Edge-chat's files are images: a part whose media type is not in a
 * data URL says `image/*`. Audio and video parts are not shown.
 */
function contentParts(content: Message["content"]): UiPart[] {
  if (typeof content === "string") return [{ type: "text", text: content, state: "done" }];
  const parts: UiPart[] = [];
  for (const part of content ?? []) {
    if (!isObject(part)) continue;
    if (part.type === "text" && typeof part.text === "string") {
      parts.push({ type: "text", text: part.text, state: "done" });
    } else if (
      part.type === "image_url" &&
      isObject(part.image_url) &&
      typeof part.image_url.url === "string"
    ) {
      const url = part.image_url.url;
      parts.push({ type: "file", mediaType: /^data:([^;,]+)/.exec(url)?.[1] ?? "image/*", url });
    } else if (part.type === "file" && isObject(part.file) && typeof part.file.file_id === "string") {
      parts.push({ type: "file", mediaType: "image/*", url: `${FILE_URL_SCHEME}${part.file.file_id}` });
    }
  }
  return parts;
}

/**
 * A tool result as the output an app gave `addToolOutput`: JSON text of an object or array is
 * parsed back (the route stores such outputs as their JSON); anything else stays a string.
 */
function toolOutput(content: Message["content"]): JsonValue {
  const text = typeof content === "string" ? content : textOf(content);
  try {
    const value = JSON.parse(text) as JsonValue;
    if (typeof value === "object" && value !== null) return value;
  } catch {
    // Not JSON: the output was a string.
  }
  return text;
}

/** The text of content parts, joined. */
function textOf(content: Message["content"]): string {
  if (!Array.isArray(content)) return content ?? "";
  return content.map((p) => (isObject(p) && typeof p.text === "string" ? p.text : "")).join("");
}

function isObject(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
