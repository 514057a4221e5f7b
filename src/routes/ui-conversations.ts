import { type Context, Hono } from "hono";
import type { AppEnv } from "../app-env";
import { type TurnContent, turnContentSchema } from "../chat/file-parts";
import type { TurnInput } from "../chat/prepare-turn";
import { canonicalJson, requestHash } from "../chat/request-hash";
import { checkTurnImages } from "../chat/turn-images";
import type { GenerationParameters } from "../dashscope/schema/parameters";
import { invalidRequest, notFound } from "../errors/api-error";
import { parseBody } from "../errors/invalid-request";
import { toApiError } from "../generation/turn-result";
import { readUiChatBody } from "../middleware/ui-chat-body";
import { SSE_HEADERS } from "../sse/response";
import { editClientMessageId, findClientMessages, findStreamingAnswer } from "../store/client-messages";
import { isId } from "../store/ids";
import { listMessages, type Message } from "../store/messages";
import {
  parseUiMessage,
  toolResultsOf,
  type UiMessage,
  uiChatRequestSchema,
  userContentOf,
} from "../ui/chat-request";
import { UI_MESSAGE_STREAM_HEADER } from "../ui/chunks";
import { uiMessageStream } from "../ui/ui-message-stream";
import { toUiMessages } from "../ui/ui-messages";
import { parseConversationParameters } from "./parameters";

/** Headers of a UI message stream: an event stream, marked as the AI SDK's protocol asks. */
const UI_STREAM_HEADERS = { ...SSE_HEADERS, ...UI_MESSAGE_STREAM_HEADER };

/** Most messages of the active path `GET /ui/conversations/{id}/messages` returns (the newest). */
const HYDRATION_LIMIT = 1000;

/**
 * The Vercel AI SDK's `useChat` with no adapter (`../shared/API.md` §2.5): its chat request in,
 * the UI message stream out (`ui/`), over the same turns as `POST /conversations/{id}/messages`.
 */
export const uiConversationRoutes = new Hono<AppEnv>()
  .post("/ui/conversations", async (c) => {
    const body = await readUiChatBody(c);
    const request = parseBody(uiChatRequestSchema, body.fields);
    if (!isId(request.id)) throw notFound("Conversation");
    const message = parseUiMessage(body.message, body.messageField);
    const parameters =
      request.parameters === undefined || request.parameters === null
        ? {}
        : parseConversationParameters(request.parameters);
    const input = await turnOf(c, {
      conversationId: request.id,
      trigger: request.trigger ?? "submit-message",
      messageId: request.messageId ?? null,
      message,
      field: body.messageField,
      model: request.model ?? null,
      parameters,
    });
    if (input.role === "user")
      input.files = await checkTurnImages(c.get("userD1").db, input.userId, input.content, c.get("config"));
    const result = await ownerOf(c.env, request.id).startTurn(input);
    c.get("userD1").report(result.d1_bookmark ?? null);
    if (!result.ok) throw toApiError(result);
    // An answer to tool results is the next step of the client's message holding the calls.
    const continues = message.role === "assistant" ? message.id : null;
    return c.body(uiMessageStream(result.stream, continues), 200, UI_STREAM_HEADERS);
  })
  .get("/ui/conversations/:id/stream", async (c) => {
    const id = c.req.param("id");
    if (!isId(id)) throw notFound("Conversation");
    const userId = c.get("userId");
    const answerId = await findStreamingAnswer(c.get("userD1").db, userId, id);
    if (answerId === undefined) throw notFound("Conversation");
    if (answerId === null) return c.body(null, 204);
    // From its first event: the AI SDK's resume replays an answer from its `start` chunk.
    const result = await ownerOf(c.env, id).follow(answerId, userId, 0);
    if (!result.ok) throw toApiError(result);
    return c.body(uiMessageStream(result.stream), 200, UI_STREAM_HEADERS);
  })
  .get("/ui/conversations/:id/messages", async (c) => {
    const id = c.req.param("id");
    if (!isId(id)) throw notFound("Conversation");
    const page = await listMessages(c.get("userD1").db, c.get("userId"), id, {
      limit: HYDRATION_LIMIT,
    });
    if (!page) throw notFound("Conversation");
    return c.json({ data: toUiMessages(page.data.toReversed()) });
  });

interface UiSend {
  conversationId: string;
  trigger: "submit-message" | "regenerate-message";
  messageId: string | null;
  message: UiMessage;
  field: string;
  model: string | null;
  parameters: GenerationParameters;
}

/**
 * The turn a chat request asks for, from its last message:
 * - an assistant message: the outputs the app added to its calls, as `tool_results`;
 * - `regenerate-message` (the last message is the user's): a new answer to that message, or,
 *   when it was never stored (its send failed before), the send itself;
 * - `submit-message` with `messageId` naming the last message: an edit, a new branch beside it
 *   (its parent is the edited message's);
 * - otherwise a send, the message's `id` as `client_message_id`.
 * The `client_message_id`s make retries safe: an edit's is `<id>:edit:<hash of the edit>`, tool
 * outputs' `tools.<hash of the call ids>`; a regenerate has none (asking twice is asking twice).
 */
async function turnOf(c: Context<AppEnv>, send: UiSend): Promise<TurnInput> {
  const userId = c.get("userId");
  const { conversationId, message, field, model, parameters } = send;
  const common = {
    userId,
    conversationId,
    requestId: c.get("requestId"),
    model,
    parameters,
    stream: true,
    cancelOnDisconnect: false,
    rateLimitTier: c.get("rateLimitTier") ?? null,
  };
  if (message.role === "assistant") {
    if (send.trigger === "regenerate-message")
      throw invalidRequest(
        "A regenerate request ends with the user message answered again.",
        `${field}.role`,
      );
    const results = toolResultsOf(message, field);
    const callIds = results.map((r) => r.tool_call_id).sort();
    return {
      ...common,
      role: "tool",
      toolResults: results.map((r) => ({ toolCallId: r.tool_call_id, content: r.content })),
      toolResultsField: "tool_results",
      clientMessageId: `tools.${(await requestHash(callIds)).slice(0, 32)}`,
      requestHash: await requestHash({ ui: "tool", tool_results: results, model, parameters }),
    };
  }
  const content = parseBody(turnContentSchema, userContentOf(message, field), `${field}.parts`);
  const regenerate = send.trigger === "regenerate-message";
  const edit = !regenerate && send.messageId === message.id;
  const stored =
    regenerate || edit
      ? storedVersion(
          await findClientMessages(c.get("userD1").db, userId, conversationId, message.id),
          content,
        )
      : null;
  if (regenerate && stored) {
    return { ...common, role: "regenerate", parentId: stored.id, clientMessageId: null, requestHash: null };
  }
  if (edit && stored) {
    const hash = await requestHash({ ui: "edit", parent_id: stored.parent_id, content, model, parameters });
    return {
      ...common,
      role: "user",
      content,
      files: [],
      parentId: stored.parent_id,
      clientMessageId: editClientMessageId(message.id, hash.slice(0, 24)),
      requestHash: hash,
    };
  }
  return {
    ...common,
    role: "user",
    content,
    // The files are looked up once the whole send is known valid (`checkTurnImages`).
    files: [],
    clientMessageId: message.id,
    requestHash: await requestHash({ ui: "send", content, model, parameters }),
  };
}

/**
 * Which stored version a client's message is. `useChat` keeps a message's id through an edit, so
 * in the session that edited it the id names the edit, while a chat hydrated later shows the
 * original under its own stored id (and the edit under the edit's): the newest version with the
 * content the client holds, else the newest.
 */
function storedVersion(versions: Message[], content: TurnContent): Message | null {
  const sent = canonicalJson(content);
  return versions.find((m) => canonicalJson(m.content) === sent) ?? versions[0] ?? null;
}

/** The Durable Object owning a conversation's answers. */
function ownerOf(env: AppEnv["Bindings"], conversationId: string) {
  return env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));
}
