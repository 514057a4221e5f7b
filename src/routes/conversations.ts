import { Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "../app-env";
import { parseGenerationParameters, toInvalidRequest } from "../dashscope/schema";
import { invalidRequest, notFound } from "../errors/api-error";
import { readJsonBody } from "../middleware/json-body";
import {
  type ArchivedFilter,
  createConversation,
  deleteConversation,
  getConversation,
  listConversations,
  updateConversation,
} from "../store/conversations";
import { isId } from "../store/ids";
import { listMessages } from "../store/messages";
import { parsePageLimit, zodIssueToInvalidRequest } from "./validation";

/** Longest conversation title, in UTF-16 code units. */
const MAX_TITLE_CHARS = 200;
/** Longest per-conversation system prompt, in UTF-16 code units. */
const MAX_SYSTEM_PROMPT_CHARS = 100_000;
/** Model names as DashScope spells them (`qwen-plus`, `qwen3-max-2025-09-23`, `qwen2.5-vl-72b-instruct`). */
const MODEL_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;

const title = z.string().max(MAX_TITLE_CHARS).nullable();
const systemPrompt = z.string().max(MAX_SYSTEM_PROMPT_CHARS).nullable();
const model = z.string().regex(MODEL_PATTERN, "must be 1 to 100 letters, digits, '.', '_' or '-'").nullable();

// `parameters` is checked by the shared DashScope schema afterwards, so errors name the exact parameter.
const createBody = z.strictObject({
  title: title.optional(),
  system_prompt: systemPrompt.optional(),
  model: model.optional(),
  parameters: z.unknown().optional(),
});

const patchBody = z.strictObject({
  title: title.optional(),
  system_prompt: systemPrompt.optional(),
  model: model.optional(),
  parameters: z.unknown().optional(),
  archived: z.boolean().optional(),
});

const ARCHIVED_FILTERS = new Map<string, ArchivedFilter>([
  ["false", "active"],
  ["true", "archived"],
  ["all", "all"],
]);

/** Parses a request body with a strict zod schema; the first problem is 400 naming its field. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const parsed = schema.safeParse(body, { reportInput: true });
  if (!parsed.success) throw zodIssueToInvalidRequest(parsed.error);
  return parsed.data;
}

/** Validates `parameters` with the upstream request's schema; `null` means "no defaults". */
function parseParameters(raw: unknown): Record<string, unknown> | undefined {
  if (raw === undefined) return undefined;
  if (raw === null) return {};
  const result = parseGenerationParameters(raw, "parameters");
  if (!result.ok) throw toInvalidRequest(result.error);
  return result.value as Record<string, unknown>;
}

/** The `{id}` path segment, or 404: a malformed id cannot name anyone's conversation. */
function conversationId(id: string): string {
  if (!isId(id)) throw notFound("Conversation");
  return id;
}

/**
 * Conversation routes (`../shared/API.md`), mounted at `/v1` behind auth:
 * create, list (`?limit=&cursor=&archived=`; `archived` is `false` (default), `true` or `all`),
 * get, patch, delete, and the newest-first message list. Another user's conversation is 404.
 */
export const conversationRoutes = new Hono<AppEnv>()
  .post("/conversations", async (c) => {
    const { parameters, ...fields } = parseBody(createBody, await readJsonBody(c, c.get("config").maxBodyBytes));
    const conversation = await createConversation(c.env.DB, c.get("userId"), {
      ...fields,
      parameters: parseParameters(parameters) ?? {},
    });
    return c.json(conversation, 201);
  })
  .get("/conversations", async (c) => {
    const limit = parsePageLimit(c.req.query("limit"));
    const rawArchived = c.req.query("archived");
    const archived = rawArchived === undefined || rawArchived === "" ? "active" : ARCHIVED_FILTERS.get(rawArchived);
    if (!archived) throw invalidRequest("archived must be true, false or all.", "archived");
    const page = await listConversations(c.env.DB, c.get("userId"), { limit, cursor: c.req.query("cursor"), archived });
    return c.json(page);
  })
  .get("/conversations/:id", async (c) => {
    const conversation = await getConversation(c.env.DB, c.get("userId"), conversationId(c.req.param("id")));
    if (!conversation) throw notFound("Conversation");
    return c.json(conversation);
  })
  .patch("/conversations/:id", async (c) => {
    const id = conversationId(c.req.param("id"));
    const { parameters, ...fields } = parseBody(patchBody, await readJsonBody(c, c.get("config").maxBodyBytes));
    const patch = { ...fields, parameters: parseParameters(parameters) };
    if (Object.values(patch).every((v) => v === undefined)) {
      throw invalidRequest("Provide at least one of title, system_prompt, model, parameters or archived.");
    }
    const conversation = await updateConversation(c.env.DB, c.get("userId"), id, patch);
    if (!conversation) throw notFound("Conversation");
    return c.json(conversation);
  })
  .delete("/conversations/:id", async (c) => {
    const deleted = await deleteConversation(c.env.DB, c.get("userId"), conversationId(c.req.param("id")));
    if (!deleted) throw notFound("Conversation");
    return c.body(null, 204);
  })
  .get("/conversations/:id/messages", async (c) => {
    const id = conversationId(c.req.param("id"));
    const limit = parsePageLimit(c.req.query("limit"));
    const page = await listMessages(c.env.DB, c.get("userId"), id, { limit, cursor: c.req.query("cursor") });
    if (!page) throw notFound("Conversation");
    return c.json(page);
  });
