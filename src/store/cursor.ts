import * as z from "zod";

/**
 * Opaque keyset cursors: base64url of a small JSON object naming the last row of a page.
 * Clients must treat them as opaque; the `k` field binds a cursor to the list it came from,
 * so a message cursor is rejected by the conversation list and vice versa.
 */

/** Position after the last conversation of a page: its `updated_at` (epoch ms) and id. */
export interface ConversationCursor {
  k: "c";
  u: number;
  i: string;
}

/** Position after the last message of a page: its id (ids are time-ordered). */
export interface MessageCursor {
  k: "m";
  i: string;
}

/**
 * A position in the user's change log (`GET /v1/sync`'s `since`): the user's sync epoch
 * (`users.sync_epoch`, `""` before the user had a row) and the last change seen. While a
 * snapshot is being paged, also the last item it returned: conversation `c` and, within it,
 * message `m` (`""`: the conversation itself); `s` is then the log's head when the snapshot began.
 */
export interface SyncCursor {
  k: "s";
  e: string;
  s: number;
  c?: string;
  m?: string;
}

/**
 * Position after the last hit of a search page: its score and the id of the message or
 * conversation (title) it is. The score depends only on the hit's text and the query
 * (`search.ts`), so it is the same on every page.
 */
export interface SearchCursor {
  k: "q";
  s: number;
  i: string;
}

/** Longest cursor we attempt to decode; real ones are well under 100 characters. */
/** Position after the last user of an operator's user list (`GET /admin/v1/users`): their id. */
export interface UserCursor {
  k: "u";
  i: string;
}

const MAX_CURSOR_CHARS = 512;

const userCursorSchema = z.strictObject({ k: z.literal("u"), i: z.string().min(1).max(255) });

const conversationCursorSchema = z.strictObject({
  k: z.literal("c"),
  u: z.int().nonnegative(),
  i: z.string().min(1).max(100),
});

const messageCursorSchema = z.strictObject({
  k: z.literal("m"),
  i: z.string().min(1).max(100),
});

const syncCursorSchema = z
  .strictObject({
    k: z.literal("s"),
    e: z.string().max(64),
    s: z.int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    c: z.string().min(1).max(100).optional(),
    m: z.string().max(100).optional(),
  })
  .refine((v) => (v.c === undefined) === (v.m === undefined));

const searchCursorSchema = z.strictObject({
  k: z.literal("q"),
  s: z.number().nonnegative(),
  i: z.string().min(1).max(100),
});

function encode(value: ConversationCursor | MessageCursor | SyncCursor | SearchCursor | UserCursor): string {
  const bytes = new TextEncoder().encode(JSON.stringify(value));
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** The cursor's value, or `null` when it is not one of ours (malformed, tampered with, or another list's). */
function decode<T>(cursor: string, schema: z.ZodType<T>): T | null {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(cursor))
    return null;
  let json: unknown;
  try {
    const binary = atob(cursor.replace(/-/g, "+").replace(/_/g, "/"));
    const bytes = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    json = JSON.parse(new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes));
  } catch {
    return null;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : null;
}

/** Cursor for the conversation list, after the row with this `updated_at` and id. */
export function encodeConversationCursor(updatedAt: number, id: string): string {
  return encode({ k: "c", u: updatedAt, i: id });
}

/** Decodes a conversation-list cursor; `null` for anything else (the route answers 400). */
export function decodeConversationCursor(cursor: string): ConversationCursor | null {
  return decode(cursor, conversationCursorSchema);
}

/** Cursor for a message list, after the message with this id. */
export function encodeMessageCursor(id: string): string {
  return encode({ k: "m", i: id });
}

/** Decodes a message-list cursor; `null` for anything else (the route answers 400). */
export function decodeMessageCursor(cursor: string): MessageCursor | null {
  return decode(cursor, messageCursorSchema);
}

/** A sync token (`next_since`). */
export function encodeSyncCursor(cursor: Omit<SyncCursor, "k">): string {
  return encode({ k: "s", ...cursor });
}

/** Decodes a sync token; `null` for anything else (the route answers 400). */
export function decodeSyncCursor(cursor: string): SyncCursor | null {
  return decode(cursor, syncCursorSchema);
}

/** Cursor for search results, after the hit with this score and message or conversation id. */
export function encodeSearchCursor(score: number, id: string): string {
  return encode({ k: "q", s: score, i: id });
}

/** Decodes a search cursor; `null` for anything else (the route answers 400). */
export function decodeSearchCursor(cursor: string): SearchCursor | null {
  return decode(cursor, searchCursorSchema);
}

/** Cursor for the operators' user list, after the user with this id. */
export function encodeUserCursor(id: string): string {
  return encode({ k: "u", i: id });
}

/** Decodes a user-list cursor; `null` for anything else (the route answers 400). */
export function decodeUserCursor(cursor: string): UserCursor | null {
  return decode(cursor, userCursorSchema);
}
