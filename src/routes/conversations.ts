import { Hono } from "hono";
import * as z from "zod";
import type { AppEnv } from "../app-env";
import { invalidRequest, notFound } from "../errors/api-error";
import { toApiError } from "../generation/turn-result";
import { jsonBody } from "../middleware/json-body";
import { createConversationBody, updateConversationBody } from "../openapi/bodies";
import { type ArchivedFilter, getConversation, listConversations } from "../store/conversations";
import { decodeConversationCursor, decodeMessageCursor } from "../store/cursor";
import { isId, newId } from "../store/ids";
import { listMessages } from "../store/messages";
import { parseConversationDefaults } from "./parameters";
import { parseCursor, parsePageLimit } from "./validation";

const ARCHIVED_FILTERS = new Map<string, ArchivedFilter>([
  ["false", "active"],
  ["true", "archived"],
  ["all", "all"],
]);

/**
 * The bodies' own fields; `parameters` are then validated exactly as a turn's are
 * ({@link parseConversationDefaults}), so a conversation can never store defaults that would
 * make its turns fail.
 */
const createEnvelope = createConversationBody.extend({ parameters: z.unknown().optional() });
const updateEnvelope = updateConversationBody.extend({ parameters: z.unknown().optional() });

/** `null` and absent clear or keep as the route says; anything else is validated. */
const defaultsOf = (value: unknown) =>
  value === undefined || value === null ? value : parseConversationDefaults(value);

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
  .post("/conversations", jsonBody(createEnvelope), async (c) => {
    const { parameters, ...fields } = c.req.valid("json");
    // Created by its object, which starts out holding its prompt state: the first turn reads nothing.
    const id = newId();
    const created = await ownerOf(c.env, id).createConversation(id, c.get("userId"), {
      ...fields,
      parameters: defaultsOf(parameters) ?? {},
    });
    c.get("userD1").report(created.d1_bookmark);
    return c.json(created.conversation, 201);
  })
  .get("/conversations", async (c) => {
    const limit = parsePageLimit(c.req.query("limit"));
    const rawArchived = c.req.query("archived");
    const archived =
      rawArchived === undefined || rawArchived === "" ? "active" : ARCHIVED_FILTERS.get(rawArchived);
    if (!archived) throw invalidRequest("archived must be true, false or all.", "archived");
    const after = parseCursor(c.req.query("cursor"), decodeConversationCursor);
    const page = await listConversations(c.get("userD1").db, c.get("userId"), {
      limit,
      after,
      archived,
    });
    return c.json(page);
  })
  .get("/conversations/:id", async (c) => {
    const conversation = await getConversation(
      c.get("userD1").db,
      c.get("userId"),
      conversationId(c.req.param("id")),
    );
    if (!conversation) throw notFound("Conversation");
    return c.json(conversation);
  })
  .patch("/conversations/:id", jsonBody(updateEnvelope), async (c) => {
    const id = conversationId(c.req.param("id"));
    const { parameters, ...fields } = c.req.valid("json");
    // `parameters: null` clears the defaults.
    const defaults = defaultsOf(parameters);
    const patch = { ...fields, parameters: defaults === null ? {} : defaults };
    if (Object.values(patch).every((v) => v === undefined)) {
      throw invalidRequest(
        "Provide at least one of title, system_prompt, model, parameters, archived or active_leaf_id.",
      );
    }
    // Through the conversation's object, the single writer of its prompt state.
    const updated = await ownerOf(c.env, id).updateConversation(id, c.get("userId"), patch);
    if (!updated.ok) throw toApiError(updated);
    c.get("userD1").report(updated.d1_bookmark);
    return c.json(updated.conversation);
  })
  .delete("/conversations/:id", async (c) => {
    const id = conversationId(c.req.param("id"));
    // Through the conversation's object, which stops an answer in flight before deleting.
    const { deleted, d1_bookmark } = await ownerOf(c.env, id).deleteConversation(id, c.get("userId"));
    c.get("userD1").report(d1_bookmark);
    if (!deleted) throw notFound("Conversation");
    return c.body(null, 204);
  })
  .get("/conversations/:id/messages", async (c) => {
    const id = conversationId(c.req.param("id"));
    const limit = parsePageLimit(c.req.query("limit"));
    const after = parseCursor(c.req.query("cursor"), decodeMessageCursor);
    const leafId = c.req.query("leaf_id");
    if (leafId !== undefined && !isId(leafId))
      throw invalidRequest("leaf_id is not a message id.", "leaf_id");
    const page = await listMessages(c.get("userD1").db, c.get("userId"), id, {
      limit,
      after,
      leafId,
    });
    if (!page) throw notFound(leafId === undefined ? "Conversation" : "Message");
    return c.json(page);
  });

/** The Durable Object that is the single writer of a conversation. */
function ownerOf(env: AppEnv["Bindings"], conversationId: string) {
  return env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));
}
