import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../app-env";
import type { TurnInput } from "../chat/prepare-turn";
import {
  describeIssue,
  messageContentSchema,
  parseGenerationParameters,
  textContentSchema,
  toInvalidRequest,
} from "../dashscope/schema";
import { invalidRequest, notFound } from "../errors/api-error";
import { SSE_HEADERS } from "../generation/sse-encoding";
import type { TurnRunResult, TurnStartResult } from "../generation/conversation-generation";
import { toApiError, type TurnFailure } from "../generation/turn-result";
import { readJsonBody } from "../middleware/json-body";
import { isId } from "../store/ids";
import { getMessage } from "../store/messages";

/** Client-chosen ids for retry-safe sends. */
const CLIENT_MESSAGE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
const MODEL_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;

const turnBody = z.strictObject({
  role: z.enum(["user", "tool"]).optional(),
  content: z.unknown(),
  tool_call_id: z.string().min(1).max(256).optional(),
  client_message_id: z.string().regex(CLIENT_MESSAGE_ID_PATTERN, "must be 1-128 letters, digits or ._:-").optional(),
  model: z.string().regex(MODEL_PATTERN, "must be 1-100 letters, digits, '.', '_' or '-'").optional(),
  parameters: z.unknown().optional(),
  stream: z.boolean("must be true or false").optional(),
});

/** A turn: `POST /conversations/{id}/messages` (`../shared/API.md`); a message by id. */
export const messageRoutes = new Hono<AppEnv>()
  .post("/conversations/:id/messages", async (c) => {
    const conversationId = c.req.param("id");
    const config = c.get("config");
    const raw = await readJsonBody(c, config.maxBodyBytes);
    if (!isId(conversationId)) throw notFound("Conversation");
    const input = parseTurn(raw, c.get("userId"), conversationId, c.get("requestId"));

    const owner = c.env.GENERATIONS.get(c.env.GENERATIONS.idFromName(conversationId));
    if (!input.stream) {
      const result = (await owner.runTurn(input)) as TurnRunResult;
      if (!result.ok) throw toApiError(result as TurnFailure);
      return c.json({ user_message: result.user_message, assistant_message: result.assistant_message });
    }
    const result = (await owner.startTurn(input)) as TurnStartResult;
    if (!result.ok) throw toApiError(result as TurnFailure);
    return new Response(result.stream, { headers: SSE_HEADERS });
  })
  .get("/messages/:id", async (c) => {
    const id = c.req.param("id");
    const message = isId(id) ? await getMessage(c.env.DB, c.get("userId"), id) : null;
    if (!message) throw notFound("Message");
    return c.json(message);
  });

/** Validates a turn's body: content by role, parameters with the DashScope schema, `n` fixed at 1. */
function parseTurn(raw: unknown, userId: string, conversationId: string, requestId: string): TurnInput {
  const body = turnBody.safeParse(raw);
  if (!body.success) throw toInvalidRequest(describeIssue(body.error.issues[0]!));
  const b = body.data;
  const role = b.role ?? "user";

  const content = (role === "tool" ? textContentSchema : messageContentSchema).safeParse(b.content);
  if (b.content === undefined) throw invalidRequest("content is required.", "content");
  if (!content.success) throw toInvalidRequest(describeIssue(content.error.issues[0]!, "content"));
  if (typeof content.data === "string" && content.data.trim() === "" && role === "user") {
    throw invalidRequest("content must not be empty.", "content");
  }
  if (role === "tool" && !b.tool_call_id) throw invalidRequest("A tool result needs tool_call_id.", "tool_call_id");
  if (role === "user" && b.tool_call_id) throw invalidRequest("tool_call_id is only for role \"tool\".", "tool_call_id");

  let parameters: Record<string, unknown> = {};
  if (b.parameters !== undefined && b.parameters !== null) {
    const p = b.parameters as Record<string, unknown>;
    // A conversation turn produces one answer; `n` (1–4) belongs to /v1/chat/completions.
    if (typeof p === "object" && !Array.isArray(p) && "n" in p) {
      if (p.n !== 1) throw invalidRequest("A conversation turn produces one answer: n must be 1.", "parameters.n");
      const { n: _n, ...rest } = p;
      b.parameters = rest;
    }
    const parsed = parseGenerationParameters(b.parameters, "parameters");
    if (!parsed.ok) throw toInvalidRequest(parsed.error);
    parameters = parsed.value;
  }

  return {
    userId,
    conversationId,
    requestId,
    role,
    content: content.data as string | unknown[],
    toolCallId: b.tool_call_id ?? null,
    clientMessageId: b.client_message_id ?? null,
    model: b.model ?? null,
    parameters,
    stream: b.stream ?? true,
  };
}
