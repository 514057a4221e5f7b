import { type Context, Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "../app-env";
import { turnContentSchema } from "../chat/file-parts";
import type { TurnInput, TurnMessage } from "../chat/prepare-turn";
import { requestHash } from "../chat/request-hash";
import { checkTurnImages } from "../chat/turn-images";
import { textContentSchema } from "../dashscope/schema";
import { invalidRequest, notFound } from "../errors/api-error";
import { parseBody } from "../errors/invalid-request";
import { toApiError } from "../generation/turn-result";
import { jsonBody } from "../middleware/json-body";
import {
  CLIENT_MESSAGE_ID_PATTERN,
  MAX_TOOL_RESULTS,
  regenerateBody,
  toolResultBody,
  turnBody,
} from "../openapi/bodies";
import type { TurnResult } from "../resources/message";
import { SSE_HEADERS } from "../sse/response";
import { isId } from "../store/ids";
import { getMessage, listSiblings } from "../store/messages";
import type { D1Queries } from "../store/sessions";
import { parseConversationParameters } from "./parameters";

/**
 * The turn body's own fields; `content` (also each tool result's) is checked by role and
 * `parameters` by the DashScope schema afterwards, so an error names the exact part or
 * parameter at fault.
 */
const turnEnvelope = turnBody.extend({
  content: z.unknown().optional(),
  parameters: z.unknown().optional(),
  tool_results: z
    .array(toolResultBody.extend({ content: z.unknown().optional() }))
    .min(1)
    .max(MAX_TOOL_RESULTS)
    .optional(),
});

/** The regenerate body's own fields; `parameters` are checked by the DashScope schema afterwards. */
const regenerateEnvelope = regenerateBody.extend({ parameters: z.unknown().optional() });

/** A turn: `POST /conversations/{id}/messages` (`../shared/API.md`); a message by id. */
export const messageRoutes = new Hono<AppEnv>()
  .post("/conversations/:id/messages", jsonBody(turnEnvelope), async (c) => {
    const conversationId = c.req.param("id");
    if (!isId(conversationId)) throw notFound("Conversation");
    const input = await parseTurn(
      c.req.valid("json"),
      c.get("userId"),
      conversationId,
      c.get("requestId"),
      c.req.header("idempotency-key"),
    );
    input.rateLimitTier = c.get("rateLimitTier") ?? null;
    if (input.role === "user")
      input.files = await checkTurnImages(c.get("userD1").db, input.userId, input.content, c.get("config"));
    return answerTurn(c, input);
  })
  .post("/messages/:id/regenerate", jsonBody(regenerateEnvelope, { optional: true }), async (c) => {
    const userId = c.get("userId");
    const answer = await ownMessage(c.get("userD1").db, userId, c.req.param("id"));
    if (answer.role !== "assistant" || answer.parent_id === null)
      throw invalidRequest("Only an answer can be regenerated.");
    const b = c.req.valid("json");
    const parameters =
      b.parameters === undefined || b.parameters === null ? {} : parseConversationParameters(b.parameters);
    const clientMessageId = clientMessageIdOf(b.client_message_id, c.req.header("idempotency-key"));
    const input: TurnInput = {
      role: "regenerate",
      parentId: answer.parent_id,
      userId,
      conversationId: answer.conversation_id,
      requestId: c.get("requestId"),
      clientMessageId,
      // The fingerprint names what is regenerated: the same id for another answer is another send.
      requestHash: clientMessageId
        ? await requestHash({ regenerate: answer.id, model: b.model, parameters })
        : null,
      model: b.model ?? null,
      parameters,
      stream: b.stream ?? true,
      cancelOnDisconnect: b.cancel_on_disconnect ?? false,
      rateLimitTier: c.get("rateLimitTier") ?? null,
    };
    return answerTurn(c, input);
  })
  .get("/messages/:id", async (c) => {
    const userId = c.get("userId");
    const message = await ownMessage(c.get("userD1").db, userId, c.req.param("id"));
    if (message.status === "streaming") {
      // The stored row has no content until the answer ends: ask its owner what has arrived.
      const partial = await ownerOf(c.env, message.conversation_id).partial(message.id, userId);
      if (partial) return c.json({ ...message, ...partial });
    }
    return c.json(message);
  })
  .get("/messages/:id/siblings", async (c) => {
    const id = c.req.param("id");
    const siblings = isId(id) ? await listSiblings(c.get("userD1").db, c.get("userId"), id) : null;
    if (!siblings) throw notFound("Message");
    return c.json({ data: siblings });
  })
  .get("/messages/:id/events", async (c) => {
    const userId = c.get("userId");
    const message = await ownMessage(c.get("userD1").db, userId, c.req.param("id"));
    if (message.role !== "assistant") throw notFound("Message");
    const after = parseAfter(c.req.query("after") ?? c.req.header("last-event-id"));
    const result = await ownerOf(c.env, message.conversation_id).follow(message.id, userId, after);
    if (!result.ok) throw toApiError(result);
    return new Response(result.stream, { headers: SSE_HEADERS });
  })
  .post("/messages/:id/stop", async (c) => {
    const userId = c.get("userId");
    const message = await ownMessage(c.get("userD1").db, userId, c.req.param("id"));
    if (message.status !== "streaming") return c.json(message);
    const stopped = await ownerOf(c.env, message.conversation_id).stop(message.id, userId);
    if (!stopped) return c.json(await ownMessage(c.get("userD1").db, userId, message.id));
    c.get("userD1").report(stopped.d1_bookmark);
    return c.json(stopped.message);
  });

/** Runs a turn through its conversation's object: the answer stream, or the stored messages when `stream` is false. */
async function answerTurn(c: Context<AppEnv>, input: TurnInput): Promise<Response> {
  const owner = ownerOf(c.env, input.conversationId);
  if (!input.stream) {
    const result = await owner.runTurn(input);
    if (!result.ok) {
      c.get("userD1").report(result.d1_bookmark ?? null);
      throw toApiError(result);
    }
    const { ok: _, d1_bookmark, ...reply } = result;
    c.get("userD1").report(d1_bookmark);
    const answer: TurnResult = reply;
    return c.json(answer);
  }
  const result = await owner.startTurn(input);
  if (!result.ok) {
    c.get("userD1").report(result.d1_bookmark ?? null);
    throw toApiError(result);
  }
  // The turn's commit; the answer's own store is later, its bookmark in the terminal event.
  c.get("userD1").report(result.d1_bookmark);
  // Through the context, so the headers set for this request (x-request-id, rate limits) go too.
  return c.body(result.stream, 200, SSE_HEADERS);
}

/** The send's `client_message_id`, or the `Idempotency-Key` header (they must agree when both are sent). */
function clientMessageIdOf(bodyId: string | undefined, idempotencyKey: string | undefined): string | null {
  if (idempotencyKey !== undefined && !CLIENT_MESSAGE_ID_PATTERN.test(idempotencyKey)) {
    throw invalidRequest("Idempotency-Key must be 1-128 letters, digits or ._:-", "Idempotency-Key");
  }
  if (idempotencyKey !== undefined && bodyId !== undefined && idempotencyKey !== bodyId) {
    throw invalidRequest("client_message_id and the Idempotency-Key header differ.", "client_message_id");
  }
  return bodyId ?? idempotencyKey ?? null;
}

/** The caller's message, or 404 (also for another user's message and malformed ids). */
async function ownMessage(db: D1Queries, userId: string, id: string) {
  const message = isId(id) ? await getMessage(db, userId, id) : null;
  if (!message) throw notFound("Message");
  return message;
}

/** The Durable Object owning a conversation's answers. */
function ownerOf(env: AppEnv["Bindings"], conversationId: string) {
  return env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));
}

/** `?after=` or `Last-Event-ID`: the id of the last event the client saw (0: from the start). */
function parseAfter(raw: string | undefined): number {
  if (raw === undefined || raw === "") return 0;
  if (!/^\d{1,9}$/.test(raw))
    throw invalidRequest("after (or Last-Event-ID) must be a non-negative event id.", "after");
  return Number(raw);
}

/**
 * Validates a turn's body: content by role (a tool turn's results each once, in one of the two
 * forms), parameters with the DashScope schema, `n` fixed at 1.
 */
async function parseTurn(
  b: z.output<typeof turnEnvelope>,
  userId: string,
  conversationId: string,
  requestId: string,
  idempotencyKey: string | undefined,
): Promise<TurnInput> {
  const message = turnMessage(b);

  const parameters =
    b.parameters === undefined || b.parameters === null ? {} : parseConversationParameters(b.parameters);

  const clientMessageId = clientMessageIdOf(b.client_message_id, idempotencyKey);
  // The fingerprint covers every result: the same id with another result is another send.
  const results = message.role === "tool" ? message.toolResults : [];
  const listed = message.role === "tool" && message.toolResultsField === "tool_results";
  if (b.parent_id !== undefined && b.parent_id !== null && !isId(b.parent_id))
    throw invalidRequest("parent_id is not a message of this conversation.", "parent_id");
  if (b.parent_id !== undefined && message.role !== "user")
    throw invalidRequest("parent_id is for a user message only.", "parent_id");
  const send = {
    parent_id: b.parent_id,
    role: message.role,
    content: message.role === "user" ? message.content : listed ? undefined : results[0]!.content,
    tool_call_id: b.tool_call_id,
    tool_results: listed
      ? results.map((r) => ({ tool_call_id: r.toolCallId, content: r.content }))
      : undefined,
    model: b.model,
    parameters,
  };
  return {
    ...message,
    userId,
    conversationId,
    requestId,
    clientMessageId,
    requestHash: clientMessageId ? await requestHash(send) : null,
    parentId: b.parent_id,
    model: b.model ?? null,
    parameters,
    stream: b.stream ?? true,
    cancelOnDisconnect: b.cancel_on_disconnect ?? false,
    rateLimitTier: null,
  };
}

/** The message of a turn body: the user's content, or tool results (`tool_call_id` + `content`, or `tool_results`). */
function turnMessage(b: z.infer<typeof turnEnvelope>): TurnMessage {
  const role = b.role ?? "user";
  if (role === "user") {
    if (b.tool_call_id !== undefined)
      throw invalidRequest('tool_call_id is only for role "tool".', "tool_call_id");
    if (b.tool_results !== undefined)
      throw invalidRequest('tool_results is only for role "tool".', "tool_results");
    if (b.content === undefined) throw invalidRequest("content is required.", "content");
    const content = parseBody(turnContentSchema, b.content, "content");
    if (typeof content === "string" && content.trim() === "")
      throw invalidRequest("content must not be empty.", "content");
    // The files are looked up once the whole body is known valid (`checkTurnImages`).
    return { role, content, files: [] };
  }
  if (b.tool_results === undefined) {
    if (b.content === undefined) throw invalidRequest("content is required.", "content");
    const content = parseBody(textContentSchema, b.content, "content");
    if (b.tool_call_id === undefined)
      throw invalidRequest("A tool result needs tool_call_id (or send tool_results).", "tool_call_id");
    return { role, toolResults: [{ toolCallId: b.tool_call_id, content }], toolResultsField: "tool_call_id" };
  }
  if (b.tool_call_id !== undefined)
    throw invalidRequest(
      "Send either tool_results, or tool_call_id with content for an answer with one call; not both.",
      "tool_results",
    );
  if (b.content !== undefined)
    throw invalidRequest("content goes in each result of tool_results, not beside it.", "content");
  const seen = new Set<string>();
  const toolResults = b.tool_results.map((r, i) => {
    if (seen.has(r.tool_call_id))
      throw invalidRequest(
        `tool_results answers "${r.tool_call_id}" twice; answer each call once.`,
        `tool_results.${i}.tool_call_id`,
      );
    seen.add(r.tool_call_id);
    if (r.content === undefined)
      throw invalidRequest(`tool_results.${i}.content is required.`, `tool_results.${i}.content`);
    const content = parseBody(textContentSchema, r.content, `tool_results.${i}.content`);
    return { toolCallId: r.tool_call_id, content };
  });
  return { role, toolResults, toolResultsField: "tool_results" };
}
