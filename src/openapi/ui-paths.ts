/**
 * Operations of the Vercel AI SDK routes (`/v1/ui/conversations`, `../shared/API.md` §2.5): its
 * chat request, its UI message stream and its `UIMessage`, as `ai` 7.0.x defines them (the
 * subset edge-chat reads and writes, `src/ui/`). Inline schemas: they are the AI SDK's shapes,
 * not edge-chat resources.
 */
import { errorResponses, pathId } from "./operations";

const str = { type: "string" };
const usage = {
  type: ["object", "null"],
  description: "The answer's token usage, as `Message.usage`.",
};
const metadata = {
  type: "object",
  description:
    "`message.metadata` of the answer: `start` carries `conversation_id`, `message_id` (the stored answer, for " +
    "`POST /v1/messages/{id}/stop`) and `user_message_id`; `finish` the outcome (`status`, `finish_reason`, " +
    "`model`, `usage`, `error`), which the AI SDK merges into it.",
  properties: {
    conversation_id: str,
    message_id: str,
    user_message_id: str,
    status: { enum: ["streaming", "completed", "cancelled", "interrupted", "failed"] },
    finish_reason: { type: ["string", "null"] },
    model: { type: ["string", "null"] },
    usage,
    error: { type: ["object", "null"] },
    d1_bookmark: str,
  },
};

/** One chunk object: `type` and the required fields. */
const chunk = (
  type: string | string[],
  properties: Record<string, unknown> = {},
  required = Object.keys(properties),
) => ({
  type: "object",
  required: ["type", ...required],
  properties: { type: Array.isArray(type) ? { enum: type } : { const: type }, ...properties },
  additionalProperties: false,
});

/** The chunks edge-chat writes (`UIMessageChunk` in `ai`). */
const uiMessageChunk = {
  oneOf: [
    chunk("start", { messageId: str, messageMetadata: metadata }, ["messageId"]),
    chunk(["start-step", "finish-step"]),
    chunk(["text-start", "text-end", "reasoning-start", "reasoning-end"], { id: str }),
    chunk(["text-delta", "reasoning-delta"], { id: str, delta: str }),
    chunk("tool-input-start", { toolCallId: str, toolName: str }),
    chunk("tool-input-delta", { toolCallId: str, inputTextDelta: str }),
    chunk("tool-input-available", { toolCallId: str, toolName: str, input: {} }),
    chunk("tool-input-error", { toolCallId: str, toolName: str, input: str, errorText: str }),
    chunk("finish", {
      finishReason: { enum: ["stop", "length", "content-filter", "tool-calls", "error", "other"] },
      messageMetadata: metadata,
    }),
    chunk("abort", { reason: str }),
    chunk("error", { errorText: str }),
  ],
};

const uiStream = {
  "text/event-stream": {
    schema: {
      type: "string",
      description:
        "The AI SDK's UI message stream (header `x-vercel-ai-ui-message-stream: v1`): `data: <chunk>` frames, then " +
        "`data: [DONE]`; `: ping` comments keep it alive. One answer is one step: `start` (its `messageId` is the " +
        "stored answer's id; an answer to tool results keeps the id of the message it continues), `start-step`, " +
        "`reasoning-*` and `text-*` parts as they stream, `tool-input-start`/`-delta` while a call's arguments " +
        "arrive and `tool-input-available` once complete, `finish-step`, `finish` with the outcome as message " +
        "metadata, then `error` for a failed or interrupted answer or `abort` for a stopped one.",
    },
    "x-sse-events": { message: uiMessageChunk },
    "x-sse-terminator": "[DONE]",
  },
};

const part = { type: "object", required: ["type"], properties: { type: str } };
const uiMessage = {
  type: "object",
  required: ["id", "role", "parts"],
  properties: {
    id: { type: "string", pattern: "^[A-Za-z0-9._-]{1,96}$" },
    role: { enum: ["user", "assistant"] },
    parts: { type: "array", items: part },
    metadata: metadata,
  },
};

/** `paths` entries of the AI SDK routes. */
export function uiPaths(): Record<string, Record<string, unknown>> {
  return {
    "/v1/ui/conversations": {
      post: {
        operationId: "sendUiChat",
        tags: ["AI SDK"],
        summary: "A turn, as the AI SDK's useChat sends it",
        description:
          'The body `DefaultChatTransport({api: "<origin>/v1/ui/conversations"})` posts. `id` is an edge-chat ' +
          "conversation (create it first); only the last message is read (`messages` may hold the whole history, up " +
          "to `MAX_UI_CHAT_BODY_BYTES`, 32 MiB; earlier messages are not even checked), or `message` alone:\n" +
          "- a user message: its text and file parts are the content (a file part with the URL `edge-chat-file:<file " +
          "id>` is an uploaded file, a `data:`/`https:` image an `image_url` part); its `id` is the send's " +
          "`client_message_id`, so a retry never asks twice;\n" +
          '- `trigger: "regenerate-message"`: a new answer to the last (user) message, as ' +
          "`POST /v1/messages/{id}/regenerate`; a message never stored is sent instead;\n" +
          "- `messageId` equal to the last message's id: an edit, a new branch beside that message;\n" +
          "- an assistant message: the outputs `addToolOutput` added to its last step's tool parts " +
          '(`output-available`: a string as is, anything else as its JSON; `output-error`: `{"error": errorText}`) ' +
          "are the turn's `tool_results`.\n" +
          "`model` and `parameters` (from `useChat`'s `body`) apply as on a turn.",
        requestBody: {
          required: true,
          content: {
            "application/json": {
              schema: {
                type: "object",
                required: ["id"],
                properties: {
                  id: { type: "string", description: "The conversation's id." },
                  messages: { type: "array", items: {}, description: "Only the last element is read." },
                  message: uiMessage,
                  trigger: { enum: ["submit-message", "regenerate-message"] },
                  messageId: { type: ["string", "null"] },
                  model: str,
                  parameters: { type: ["object", "null"] },
                },
              },
            },
          },
        },
        responses: {
          200: { description: "The answer, streamed.", content: uiStream },
          ...errorResponses([400, 401, 404, 409, 413, 415, 422, 429, 502, 504], "Error"),
        },
      },
    },
    "/v1/ui/conversations/{id}/stream": {
      parameters: [pathId("conversation")],
      get: {
        operationId: "resumeUiChat",
        tags: ["AI SDK"],
        summary: "The answer in flight, from its start (useChat's resume)",
        description:
          "What `DefaultChatTransport.reconnectToStream` asks for: the conversation's answer being generated, replayed " +
          "from its `start` chunk and then live. 204 when no answer is in flight.",
        responses: {
          200: { description: "The answer, from its start.", content: uiStream },
          204: { description: "No answer is being generated." },
          ...errorResponses([401, 404], "Error"),
        },
      },
    },
    "/v1/ui/conversations/{id}/messages": {
      parameters: [pathId("conversation")],
      get: {
        operationId: "listUiMessages",
        tags: ["AI SDK"],
        summary: "The active path as UIMessages, to hydrate useChat",
        description:
          "The newest 1,000 messages of the active path, oldest first, as the stream built them: a user message's " +
          "text and file parts (`edge-chat-file:<id>` for an uploaded file); an answer as a step (`step-start`, " +
          "`reasoning`, `text`, `tool-<name>` parts). An answer to tool results continues the message of the calls " +
          "as its next step, each result its call's `output` (JSON objects and arrays parsed back).",
        responses: {
          200: {
            description: "The messages.",
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  required: ["data"],
                  properties: { data: { type: "array", items: uiMessage } },
                },
              },
            },
          },
          ...errorResponses([401, 404], "Error"),
        },
      },
    },
  };
}
