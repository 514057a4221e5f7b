/**
 * The OpenAPI 3.1 document of edge-chat (`/openapi.json`).
 *
 * It is assembled here from the zod schemas that validate requests (see `./components.ts`) rather
 * than by converting the routes to an OpenAPI-aware router: that would rewrite every route module,
 * while zod v4 emits JSON Schema 2020-12 natively, which is exactly OpenAPI 3.1's schema dialect.
 * `test/openapi.test.ts` fails when a registered route has no operation here.
 *
 * Server-sent event streams have no vocabulary of their own in OpenAPI 3.1: a `text/event-stream`
 * response's schema is that of one event's `data` (the answer stream: `AnswerEvent`, a
 * discriminated `oneOf`). The OpenAI-compatible chunk stream and the UI message stream
 * (`./ui-paths.ts`), whose last event (`[DONE]`) is not JSON, keep their payloads in the
 * `x-sse-events` extension.
 */
import {
  MAX_CONTENT_PARTS,
  MAX_JSON_DEPTH,
  MAX_OUTPUT_TOKENS,
  MAX_PARAMETERS_BYTES,
  MAX_TOOLS,
} from "../dashscope/schema";
import { MAX_SEARCH_QUERY_LENGTH, MAX_SEARCH_TERMS, SHORT_QUERY_SCAN_LIMIT } from "../store/search";
import { accountPaths } from "./account-paths";
import { buildComponentSchemas, type JsonSchema, ref } from "./components";
import { d1BookmarkHeader, d1BookmarkParameter, withD1Bookmarks } from "./d1-bookmark";
import { exportSyncPaths } from "./export-sync-paths";
import { filePaths } from "./file-paths";
import {
  errorResponses,
  json,
  jsonBody,
  pageParameters,
  pathId,
  rateLimitHeaders,
  usageRangeParameters,
} from "./operations";
import { withReshardingResponses } from "./resharding";
import { uiPaths } from "./ui-paths";
import { webhookOperations } from "./webhooks";

/**
 * The answer stream of a turn (and its resumption). The schema is that of one event's `data`,
 * `AnswerEvent`: a `oneOf` discriminated by `type`, the event's name, which is how SSE-aware
 * generators (hey-api's `client.sse`, Speakeasy, OpenAPI 3.2's `itemSchema`) type each event.
 */
const answerStream = {
  "text/event-stream": {
    schema: {
      ...ref("AnswerEvent"),
      description:
        "Server-sent events, each with `event:`, a per-answer increasing `id:` and JSON `data:` (this schema) whose first key, `type`, is the event's name; `: ping` comments at least every 15 s from the first byte on, also while the model has not sent its first token. " +
        "A turn's stream starts once both messages are stored, as soon as the model's HTTP status is known and at most `STREAM_START_DEADLINE_MS` (1 s) later; a failure after that arrives as `message.failed` with the mapped `error.code`. " +
        "Ends with exactly one `message.completed` or `message.failed`; reconnect to `/v1/messages/{id}/events` with the last `id:` seen (`Last-Event-ID`) to resume.",
    },
  },
};

/** The 200 of a send (turn or regenerate): the stream or the stored messages, chosen by `stream`. */
const sendResponse = {
  description:
    "By the body's `stream`: with `stream: true` (the default) `text/event-stream`, the answer's events (`AnswerEvent` each); " +
    "with `stream: false` `application/json`, the turn's stored messages (`TurnResult`) once the answer is complete.",
  content: { ...answerStream, ...json("TurnResult") },
};

/** The OpenAI-compatible chunk stream. */
const completionStream = {
  "text/event-stream": {
    schema: {
      type: "string",
      description:
        "OpenAI's chunk stream: `data: <ChatCompletionChunk>` events, then `data: [DONE]`. A failure after the stream started " +
        "is one `data: <OpenAIError>` event instead of `[DONE]` (the SDKs raise it as `APIError`). The usage chunk " +
        "(`choices: []`) is sent only when `stream_options.include_usage` is true. The response starts (200, headers and a " +
        "`: ping` comment) once DashScope accepted the request, and at the latest `STREAM_START_DEADLINE_MS` (1 s) after " +
        "it was sent, before the first token; `: ping` comments follow whenever nothing was sent for 15 s. An answer that " +
        'reaches the reply room its quota reservation granted ends like a `max_tokens` cut: `finish_reason: "length"`, ' +
        'the usage chunk (when asked for) with `"estimated": true`, then `[DONE]`.',
    },
    "x-sse-events": { message: { oneOf: [ref("ChatCompletionChunk"), ref("OpenAIError")] } },
    "x-sse-terminator": "[DONE]",
  },
};

const PUBLIC = { security: [] as unknown[] };

/** `paths`: every route of `../shared/API.md`, the OpenAI-compatible routes and the document itself. */
function buildPaths(): Record<string, Record<string, unknown>> {
  return {
    "/healthz": {
      get: {
        operationId: "getHealth",
        tags: ["Meta"],
        summary: "Liveness",
        ...PUBLIC,
        responses: { 200: { description: "Up.", content: json("Health") } },
      },
    },
    "/openapi.json": {
      get: {
        operationId: "getOpenApiDocument",
        tags: ["Meta"],
        summary: "This document",
        ...PUBLIC,
        responses: {
          200: {
            description: "OpenAPI 3.1 document.",
            content: { "application/json": { schema: { type: "object" } } },
          },
        },
      },
    },
    "/docs": {
      get: {
        operationId: "getApiReference",
        tags: ["Meta"],
        summary: "Interactive API reference",
        description:
          "An HTML page rendering `/openapi.json` with Swagger UI, which this Worker serves itself " +
          "(static assets under `/docs/swagger-ui/`): it works without network access beyond this origin.",
        ...PUBLIC,
        responses: {
          200: { description: "HTML page.", content: { "text/html": { schema: { type: "string" } } } },
        },
      },
    },
    "/docs/init.js": {
      get: {
        operationId: "getApiReferenceScript",
        tags: ["Meta"],
        summary: "Start-up script of the API reference page",
        ...PUBLIC,
        responses: {
          200: {
            description: "JavaScript.",
            content: { "text/javascript": { schema: { type: "string" } } },
          },
        },
      },
    },
    "/v1/conversations": {
      post: {
        operationId: "createConversation",
        tags: ["Conversations"],
        summary: "Create a conversation",
        requestBody: jsonBody("CreateConversationRequest", "All fields optional; send `{}` for defaults."),
        responses: {
          201: { description: "Created.", content: json("Conversation") },
          ...errorResponses([400, 401, 413, 415], "Error"),
        },
      },
      get: {
        operationId: "listConversations",
        tags: ["Conversations"],
        summary: "List conversations, most recently updated first",
        parameters: [
          ...pageParameters,
          {
            name: "archived",
            in: "query",
            required: false,
            description: "`false` (default): active only; `true`: archived only; `all`.",
            schema: { type: "string", enum: ["false", "true", "all"] },
          },
        ],
        responses: {
          200: { description: "A page.", content: json("ConversationPage") },
          ...errorResponses([400, 401], "Error"),
        },
      },
    },
    "/v1/conversations/{id}": {
      parameters: [pathId("conversation")],
      get: {
        operationId: "getConversation",
        tags: ["Conversations"],
        summary: "Get a conversation",
        responses: {
          200: { description: "The conversation.", content: json("Conversation") },
          ...errorResponses([401, 404], "Error"),
        },
      },
      patch: {
        operationId: "updateConversation",
        tags: ["Conversations"],
        summary: "Update a conversation",
        requestBody: jsonBody("UpdateConversationRequest", "At least one field."),
        responses: {
          200: { description: "The updated conversation.", content: json("Conversation") },
          ...errorResponses([400, 401, 404, 413, 415], "Error"),
        },
      },
      delete: {
        operationId: "deleteConversation",
        tags: ["Conversations"],
        summary: "Delete a conversation and its messages",
        description:
          "An answer in flight is stopped first: its upstream call is aborted, only what was generated is billed (estimated usage marked `estimated`), and every open stream ends with `message.failed` (status `cancelled`, `error.code` `conversation_deleted`).",
        responses: { 204: { description: "Deleted." }, ...errorResponses([401, 404], "Error") },
      },
    },
    "/v1/conversations/{id}/messages": {
      parameters: [pathId("conversation")],
      get: {
        operationId: "listMessages",
        tags: ["Messages"],
        summary: "List the messages of a conversation's active path, newest first",
        description:
          "The path from the active leaf (`active_leaf_id`) up to the root, newest first; `leaf_id` lists the path ending at another message instead. A `cursor` continues the path it was issued for. Other branches are reached through `sibling_count` and `/v1/messages/{id}/siblings`.",
        parameters: [
          ...pageParameters,
          {
            name: "leaf_id",
            in: "query",
            required: false,
            description: "List the path ending at this message of the conversation.",
            schema: { type: "string" },
          },
        ],
        responses: {
          200: { description: "A page.", content: json("MessagePage") },
          ...errorResponses([400, 401, 404], "Error"),
        },
      },
      post: {
        operationId: "sendMessage",
        tags: ["Messages"],
        summary: "Send a message and get the answer",
        description:
          "With `stream: true` (default) the answer is a `text/event-stream` of `AnswerEvent`s; with `stream: false`, " +
          "the stored user and assistant messages once the answer is complete (a tool turn adds its results as `tool_messages`). " +
          'A tool turn answers every call of the latest answer: `{role: "tool", tool_results: [{tool_call_id, content}, …]}`. ' +
          "A photo is a `file` part naming an upload (`FileContentPart`): stored as that reference, sent to the model as the " +
          "image in this turn and every later one whose history holds it; the model must see images (400 naming `model`).",
        parameters: [
          {
            name: "Idempotency-Key",
            in: "header",
            required: false,
            description: "Same as `client_message_id` (they must agree when both are sent).",
            schema: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$" },
          },
        ],
        requestBody: jsonBody("CreateTurnRequest"),
        responses: {
          200: { ...sendResponse, headers: rateLimitHeaders },
          ...errorResponses([400, 401, 404, 409, 413, 415, 422, 429, 502, 504], "Error", {
            rateLimited: true,
          }),
        },
      },
    },
    "/v1/messages/{id}": {
      parameters: [pathId("message")],
      get: {
        operationId: "getMessage",
        tags: ["Messages"],
        summary: "Get a message and its status (pollable)",
        responses: {
          200: { description: "The message.", content: json("Message") },
          ...errorResponses([401, 404], "Error"),
        },
      },
    },
    "/v1/messages/{id}/regenerate": {
      parameters: [pathId("message")],
      post: {
        operationId: "regenerateMessage",
        tags: ["Messages"],
        summary: "Get another answer to the same message",
        description:
          "A new answer to the message the given answer answers (its sibling; also to retry a `failed` or `interrupted` answer), streamed like a turn: " +
          "idempotent with `client_message_id`, stoppable, resumable, reserved and billed as a turn. The new answer becomes the active leaf; nothing is deleted.",
        parameters: [
          {
            name: "Idempotency-Key",
            in: "header",
            required: false,
            description: "Same as `client_message_id` (they must agree when both are sent).",
            schema: { type: "string", pattern: "^[A-Za-z0-9._:-]{1,128}$" },
          },
        ],
        requestBody: jsonBody("RegenerateRequest"),
        responses: {
          200: sendResponse,
          ...errorResponses([400, 401, 404, 409, 413, 415, 429, 502, 504], "Error"),
        },
      },
    },
    "/v1/messages/{id}/siblings": {
      parameters: [pathId("message")],
      get: {
        operationId: "listMessageSiblings",
        tags: ["Messages"],
        summary: "The versions at a message's point of the tree",
        description:
          "Every message with the same parent (edits of a user message, regenerated answers), oldest first, the message itself included.",
        responses: {
          200: { description: "The siblings.", content: json("MessageSiblings") },
          ...errorResponses([401, 404], "Error"),
        },
      },
    },
    "/v1/messages/{id}/events": {
      parameters: [pathId("message")],
      get: {
        operationId: "resumeMessageEvents",
        tags: ["Messages"],
        summary: "Resume an answer's stream",
        description: "Every event after the given id, exactly once and in order, then the live tail.",
        parameters: [
          {
            name: "Last-Event-ID",
            in: "header",
            required: false,
            description: "The last event id received.",
            schema: { type: "string" },
          },
          {
            name: "after",
            in: "query",
            required: false,
            description: "Same as `Last-Event-ID`.",
            schema: { type: "string" },
          },
        ],
        responses: {
          200: { description: "The answer stream.", content: answerStream },
          ...errorResponses([400, 401, 404], "Error"),
        },
      },
    },
    "/v1/messages/{id}/stop": {
      parameters: [pathId("message")],
      post: {
        operationId: "stopMessage",
        tags: ["Messages"],
        summary: "Stop an answer that is still generating",
        responses: {
          200: { description: "The message as stored.", content: json("Message") },
          ...errorResponses([401, 404, 409], "Error"),
        },
      },
    },
    "/v1/search": {
      get: {
        operationId: "search",
        tags: ["Search"],
        summary: "Search the caller's messages and conversation titles",
        description:
          "Finds the caller's user and assistant messages (their text, not reasoning or tool calls) and conversation titles " +
          "containing every term of `q`, in any language: each term is matched as a substring, case-insensitively, so " +
          "Chinese and Japanese need no spaces (`天气`, `東京タワー`). Best match first (more occurrences in a shorter " +
          "text), then newest. A deleted conversation never appears; archived ones do. Pages never repeat or skip a hit " +
          "while the texts are unchanged. Queries whose terms all have fewer than 3 characters look through the caller's " +
          `newest ${SHORT_QUERY_SCAN_LIMIT} messages and titles only.`,
        parameters: [
          {
            name: "q",
            in: "query",
            required: true,
            description:
              `Terms separated by spaces, or \`"…"\` for a phrase with spaces; every character is literal (no operators). ` +
              `At most ${MAX_SEARCH_QUERY_LENGTH} UTF-16 code units after trimming and ${MAX_SEARCH_TERMS} terms; no control characters but tab and line breaks.`,
            schema: { type: "string", minLength: 1, maxLength: MAX_SEARCH_QUERY_LENGTH },
          },
          ...pageParameters,
        ],
        responses: {
          200: { description: "A page of hits.", content: json("SearchPage") },
          ...errorResponses([400, 401], "Error"),
        },
      },
    },
    "/v1/usage": {
      get: {
        operationId: "getUsage",
        tags: ["Usage"],
        summary: "The caller's token usage by day and model",
        parameters: usageRangeParameters,
        responses: {
          200: { description: "Usage.", content: json("UsageReport") },
          ...errorResponses([400, 401], "Error"),
        },
      },
    },
    ...exportSyncPaths(),
    ...accountPaths(),
    ...filePaths(),
    ...uiPaths(),
    "/v1/chat/completions": {
      post: {
        operationId: "createChatCompletion",
        tags: ["OpenAI-compatible"],
        summary: "Chat Completions (OpenAI-compatible)",
        description:
          "The DashScope request (every documented parameter, `n` 1–4), forwarded as the caller; the answer is DashScope's " +
          "OpenAI-compatible completion or chunk stream, passed through. A request DashScope answers only as a stream " +
          "(thinking, QwQ/QVQ/Qwen-Omni models, audio output) without `stream: true` is streamed upstream and returned as " +
          "the `chat.completion` a non-streamed call returns. Errors use OpenAI's envelope, so the official SDKs " +
          "raise their usual exceptions. A `user` message may carry `file` parts naming the caller's uploads " +
          "(`FileContentPart`); they go upstream as images and the files stay unattached. A model that cannot see " +
          "images is a 400 naming `model` for any image.",
        requestBody: jsonBody("ChatCompletionRequest"),
        responses: {
          200: {
            description: "A completion, or a chunk stream when `stream` is true.",
            headers: rateLimitHeaders,
            content: { ...json("ChatCompletion"), ...completionStream },
          },
          ...errorResponses([400, 401, 413, 415, 422, 429, 502, 504], "OpenAIError", { rateLimited: true }),
        },
      },
    },
    "/v1/models": {
      get: {
        operationId: "listModels",
        tags: ["OpenAI-compatible"],
        summary: "List models (OpenAI-compatible)",
        responses: {
          200: { description: "The configured models.", content: json("ModelList") },
          ...errorResponses([401], "OpenAIError"),
        },
      },
    },
    "/v1/models/{id}": {
      parameters: [pathId("model")],
      get: {
        operationId: "getModel",
        tags: ["OpenAI-compatible"],
        summary: "Get a model (OpenAI-compatible)",
        responses: {
          200: { description: "The model.", content: json("Model") },
          ...errorResponses([401, 404], "OpenAIError"),
        },
      },
    },
  };
}

/** The OpenAPI document: a plain JSON object. */
export type OpenApiDocument = Record<string, unknown> & {
  openapi: string;
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, JsonSchema> } & Record<string, unknown>;
};

/** The API's version in `info.version` (the contract is v1). */
export const API_VERSION = "1.0.0";

let built: OpenApiDocument | null = null;

/** The OpenAPI 3.1 document (built once per isolate; callers must not mutate it). */
export function openApiDocument(): OpenApiDocument {
  built ??= {
    openapi: "3.1.1",
    jsonSchemaDialect: "https://spec.openapis.org/oas/3.1/dialect/base",
    info: {
      title: "edge-chat",
      version: API_VERSION,
      description:
        "Chat backend for mobile apps in front of Alibaba Cloud DashScope (Qwen). Conversations with resumable answer streams, " +
        "and an OpenAI-compatible endpoint for the official `openai` SDKs. Authenticate with `Authorization: Bearer <token>`: " +
        "a JWT from the app's identity provider or an edge-chat API key.\n\n" +
        `Input limits (each a 400 \`invalid_request\` naming the field): request bodies nest arrays and objects at most ${MAX_JSON_DEPTH} levels deep; ` +
        "every string and key is well-formed Unicode (no unpaired UTF-16 surrogate such as `\\ud83d` alone); " +
        `\`parameters\` (and /v1/chat/completions without \`messages\`) are at most ${MAX_PARAMETERS_BYTES} bytes of JSON; ` +
        `a message has at most ${MAX_CONTENT_PARTS} content parts and a request at most ${MAX_TOOLS} tools; \`max_tokens\` and ` +
        `\`thinking_budget\` are at most ${MAX_OUTPUT_TOKENS}; media URLs must name a public host (no loopback, private, ` +
        "link-local or internal names); titles and API key names have no control characters. " +
        "A conversation's `parameters` are validated exactly as a turn's.",
    },
    servers: [{ url: "/" }],
    security: [{ bearerAuth: [] }],
    tags: [
      { name: "Conversations" },
      { name: "Messages" },
      { name: "Files" },
      { name: "AI SDK" },
      { name: "Search" },
      { name: "Export and sync" },
      { name: "Usage" },
      { name: "Account" },
      { name: "API keys" },
      { name: "Operators" },
      { name: "OpenAI-compatible" },
      { name: "Meta" },
      { name: "Webhooks", description: "What edge-chat POSTs to `WEBHOOK_URL` (README, Webhooks)." },
    ],
    paths: withReshardingResponses(withD1Bookmarks(buildPaths())),
    webhooks: webhookOperations(),
    components: {
      securitySchemes: {
        bearerAuth: {
          type: "http",
          scheme: "bearer",
          description: "A JWT from the app's identity provider, or an edge-chat API key.",
        },
        adminToken: {
          type: "http",
          scheme: "bearer",
          description: "The operator token (`ADMIN_TOKEN`); operator routes only.",
        },
      },
      schemas: buildComponentSchemas(),
      parameters: { D1Bookmark: d1BookmarkParameter },
      headers: { D1Bookmark: d1BookmarkHeader },
    },
  };
  return built;
}
