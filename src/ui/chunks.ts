/**
 * The chunks of the Vercel AI SDK's UI message stream that edge-chat writes: the subset of `ai`'s
 * `UIMessageChunk` (7.0.x, `uiMessageChunkSchema` in `ai/dist/index.js`) an edge-chat answer maps
 * to, field for field, with nothing beside the fields that schema names.
 */
import type { JsonValue } from "../resources/json";
import type { MessageError, MessageStatus, MessageUsage } from "../resources/message";

/**
 * `finish.finishReason` as the AI SDK names it (its enum: stop, length, content-filter,
 * tool-calls, error, interrupted, other).
 */
export type UiFinishReason = "stop" | "length" | "content-filter" | "tool-calls" | "error" | "other";

/**
 * The metadata of an answer's `UIMessage` (`message.metadata` in `useChat`). `start` carries the
 * ids, `finish` the outcome; the AI SDK merges the two.
 */
export interface UiMessageMetadata {
  conversation_id?: string;
  /**
   * The stored answer streamed (for `POST /v1/messages/{id}/stop`): the message's own id, except
   * in an answer to tool results, which continues the UI message of the calls under its id.
   */
  message_id?: string;
  /** The stored message the answer follows: the user message (a tool turn's last result). */
  user_message_id?: string;
  status?: MessageStatus;
  finish_reason?: string | null;
  model?: string | null;
  /** Token usage of the answer (`null` while unknown), as on the Message resource. */
  usage?: MessageUsage | null;
  error?: MessageError | null;
  /**
   * On `finish`: the D1 bookmark after the answer was stored (the terminal event's `d1_bookmark`);
   * send it as `x-d1-bookmark` to read the answer from any replica.
   */
  d1_bookmark?: string;
}

export type UiChunk =
  | { type: "start"; messageId: string; messageMetadata?: UiMessageMetadata }
  | { type: "start-step" }
  | { type: "finish-step" }
  | { type: "text-start" | "text-end" | "reasoning-start" | "reasoning-end"; id: string }
  | { type: "text-delta" | "reasoning-delta"; id: string; delta: string }
  | { type: "tool-input-start"; toolCallId: string; toolName: string }
  | { type: "tool-input-delta"; toolCallId: string; inputTextDelta: string }
  | { type: "tool-input-available"; toolCallId: string; toolName: string; input: JsonValue }
  | { type: "tool-input-error"; toolCallId: string; toolName: string; input: string; errorText: string }
  | { type: "finish"; finishReason: UiFinishReason; messageMetadata: UiMessageMetadata }
  | { type: "abort"; reason: string }
  | { type: "error"; errorText: string };

/** The response header the AI SDK's stream protocol asks a custom backend to set. */
export const UI_MESSAGE_STREAM_HEADER = { "x-vercel-ai-ui-message-stream": "v1" } as const;
