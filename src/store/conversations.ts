import { parseWellFormedJson } from "../text/well-formed";
import { type ConversationCursor, encodeConversationCursor } from "./cursor";
import { detachConversationFilesQueries } from "./file-lifecycle";
import { newId } from "./ids";
import type { D1Queries } from "./sessions";
import { batch, query, sql } from "./sql";
import { nowMs, toIso } from "./time";
import type { Conversation, ConversationPage, ConversationRow, JsonObject } from "./types";

export type { Conversation, ConversationRow } from "./types";

/** Fields a client sets when creating a conversation (already validated by the route). */
export interface NewConversation {
  title?: string | null;
  system_prompt?: string | null;
  model?: string | null;
  parameters?: Record<string, unknown>;
}

/**
 * A partial update (already validated by the route). A key that is absent is left alone;
 * `null` clears `title`, `system_prompt` or `model`; `parameters` replaces the stored object.
 */
export interface ConversationPatch {
  title?: string | null;
  system_prompt?: string | null;
  model?: string | null;
  parameters?: Record<string, unknown>;
  archived?: boolean;
  /** A message of the conversation: the active path moves to its newest leaf. */
  active_leaf_id?: string;
}

/** Which conversations a list shows: `active` (not archived), `archived`, or `all`. */
export type ArchivedFilter = "active" | "archived" | "all";

export interface ListConversationsOptions {
  limit: number;
  /** Where the page starts: the previous page's `next_cursor`, decoded (`decodeConversationCursor`). */
  after?: ConversationCursor;
  archived?: ArchivedFilter;
}

/**
 * Maps a D1 row to the API's Conversation. `model` is what is stored: `null` when unset,
 * meaning the server default applies at turn time (so a later default change reaches it).
 */
export function conversationFromRow(row: ConversationRow): Conversation {
  return {
    id: row.id,
    title: row.title,
    system_prompt: row.system_prompt,
    model: row.model,
    parameters: parseWellFormedJson(row.params_json) as JsonObject,
    archived: row.archived_at !== null,
    active_leaf_id: row.active_leaf_id ?? null,
    created_at: toIso(row.created_at),
    updated_at: toIso(row.updated_at),
    last_message_at: toIso(row.last_message_at),
  };
}

/**
 * Creates a conversation for `userId`, creating the user row on first use.
 * One `batch()` (one round trip, one transaction): the user upsert must precede the insert
 * because `conversations.user_id` references `users(id)`.
 */
export async function createConversation(
  db: D1Queries,
  userId: string,
  input: NewConversation,
  id: string = newId(),
): Promise<ConversationRow> {
  const now = nowMs();
  const [, inserted] = await db.batch<ConversationRow>([
    db.prepare("INSERT OR IGNORE INTO users (id, created_at) VALUES (?, ?)").bind(userId, now),
    db
      .prepare(
        `INSERT INTO conversations (id, user_id, title, system_prompt, model, params_json, created_at, updated_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      )
      .bind(
        id,
        userId,
        input.title ?? null,
        input.system_prompt ?? null,
        input.model ?? null,
        JSON.stringify(input.parameters ?? {}),
        now,
        now,
      ),
  ]);
  const row = inserted?.results[0];
  if (!row) throw new Error("INSERT INTO conversations returned no row");
  return row;
}

/**
 * One page of the user's conversations, most recently updated first (ties: id descending).
 * Keyset pagination on `(updated_at, id)` served by `conversations_by_user_updated`; one row
 * more than `limit` is read to learn whether another page exists.
 */
export async function listConversations(
  db: D1Queries,
  userId: string,
  options: ListConversationsOptions,
): Promise<ConversationPage> {
  const where = ["user_id = ?"];
  const binds: (string | number)[] = [userId];
  if (options.archived === "active") where.push("archived_at IS NULL");
  else if (options.archived === "archived") where.push("archived_at IS NOT NULL");
  const after = options.after;
  if (after) {
    where.push("(updated_at, id) < (?, ?)");
    binds.push(after.u, after.i);
  }
  binds.push(options.limit + 1);
  const { results } = await db
    .prepare(
      `SELECT * FROM conversations WHERE ${where.join(" AND ")} ORDER BY updated_at DESC, id DESC LIMIT ?`,
    )
    .bind(...binds)
    .all<ConversationRow>();
  const rows = results.slice(0, options.limit);
  const last = rows[rows.length - 1];
  return {
    data: rows.map(conversationFromRow),
    next_cursor:
      results.length > options.limit && last ? encodeConversationCursor(last.updated_at, last.id) : null,
  };
}

/** The user's conversation, or `null` if it does not exist or belongs to someone else. */
export async function getConversation(
  db: D1Queries,
  userId: string,
  id: string,
): Promise<Conversation | null> {
  const row = await db
    .prepare("SELECT * FROM conversations WHERE id = ? AND user_id = ?")
    .bind(id, userId)
    .first<ConversationRow>();
  return row ? conversationFromRow(row) : null;
}

/**
 * Applies `patch` and bumps `updated_at` in one round trip; `null` if the conversation is not
 * the user's. Archiving keeps the original `archived_at` when it is already archived. With the
 * updated row comes the conversation's version before the update (see `VersionStep`).
 */
export async function updateConversation(
  db: D1Queries,
  userId: string,
  id: string,
  patch: ConversationPatch,
): Promise<{ row: ConversationRow; version: { before: number; after: number } } | null> {
  const now = nowMs();
  const sets = ["updated_at = ?"];
  const binds: (string | number | null)[] = [now];
  if (patch.title !== undefined) {
    sets.push("title = ?");
    binds.push(patch.title);
  }
  if (patch.system_prompt !== undefined) {
    sets.push("system_prompt = ?");
    binds.push(patch.system_prompt);
  }
  if (patch.model !== undefined) {
    sets.push("model = ?");
    binds.push(patch.model);
  }
  if (patch.parameters !== undefined) {
    sets.push("params_json = ?");
    binds.push(JSON.stringify(patch.parameters));
  }
  if (patch.active_leaf_id !== undefined) {
    // The newest leaf below the given message (itself when it has no children); the caller has
    // checked that it is a message of this conversation.
    sets.push(`active_leaf_id = (WITH RECURSIVE below (id) AS (
        SELECT id FROM messages WHERE id = ? AND conversation_id = conversations.id
        UNION ALL SELECT m.id FROM messages AS m JOIN below ON m.parent_id = below.id
      ) SELECT MAX(id) FROM below)`);
    binds.push(patch.active_leaf_id);
  }
  if (patch.archived === true) {
    sets.push("archived_at = COALESCE(archived_at, ?)");
    binds.push(now);
  } else if (patch.archived === false) {
    sets.push("archived_at = NULL");
  }
  binds.push(id, userId);
  const version = () =>
    db.prepare("SELECT version FROM conversations WHERE id = ? AND user_id = ?").bind(id, userId);
  const [before, updated, after] = await db.batch<{ version: number } | ConversationRow>([
    version(),
    db
      .prepare(`UPDATE conversations SET ${sets.join(", ")} WHERE id = ? AND user_id = ? RETURNING *`)
      .bind(...binds),
    version(),
  ]);
  const row = updated?.results[0] as ConversationRow | undefined;
  const versionBefore = (before?.results[0] as { version: number } | undefined)?.version;
  // RETURNING reports the row before the AFTER UPDATE trigger bumps its version: read it again.
  const versionAfter = (after?.results[0] as { version: number } | undefined)?.version;
  if (!row || versionBefore === undefined || versionAfter === undefined) return null;
  return { row: { ...row, version: versionAfter }, version: { before: versionBefore, after: versionAfter } };
}

/**
 * Deletes the user's conversation; its messages go with it (`ON DELETE CASCADE`, which D1
 * enforces: foreign keys are always on). In the same batch (one transaction), the files only this
 * conversation refers to are hidden and its `message_files` rows deleted
 * (`detachConversationFilesQueries`). Returns whether a conversation was deleted and the hidden
 * files, whose R2 objects and rows the caller deletes next (`purgeHiddenFiles`; the cron finishes
 * what a cut-off caller left).
 */
export async function deleteConversation(
  db: D1Queries,
  userId: string,
  id: string,
): Promise<{ deleted: boolean; hiddenFiles: string[] }> {
  const files = detachConversationFilesQueries(db, userId, id, nowMs());
  const r = await batch(db, {
    ...files,
    conversation: query(db, sql`DELETE FROM conversations WHERE id = ${id} AND user_id = ${userId}`),
  });
  return {
    deleted: r.conversation.meta.changes > 0,
    hiddenFiles: r.hide.results.map((row) => row.id),
  };
}
