import { env, exports } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { app } from "../src/app";
import { EXPORT_PAGE_ITEMS } from "../src/routes/export";
import { newId } from "../src/store/ids";
import { countRoundTrips } from "../src/store/round-trips";
import { shardDatabases } from "../src/store/shards";
import type { Conversation, Message } from "../src/store/types";
import {
  BASE,
  call,
  createConversation,
  expectError,
  listMessages,
  newUser,
  streamTurn,
} from "./helpers/api";
import { authHeaders } from "./helpers/auth";
import { dbOf } from "./helpers/shards";
import { parseStrictJson } from "./helpers/strict-json";

// API.md §2.3: GET /v1/conversations/{id}/export → {conversation, messages} (every branch, oldest
// first); GET /v1/account/export → one JSON document of everything of the caller, streamed.

type ExportedConversation = Conversation & { messages: Message[] };
interface AccountExport {
  user_id: string;
  exported_at: string;
  conversations: ExportedConversation[];
  files: unknown[];
}

/** Inserts `count` finished messages into a conversation straight into D1 (test setup), each the child of the one before. */
async function seedMessages(userId: string, conversationId: string, count: number, label: string) {
  const ids = Array.from({ length: count }, () => newId());
  const now = Date.now();
  const statements = ids.map((id, i) =>
    dbOf(userId)
      .prepare(
        `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, content_json, status, created_at, completed_at)
       VALUES (?, ?, ?, ?, ?, ?, 'completed', ?, ?)`,
      )
      .bind(
        id,
        conversationId,
        userId,
        i === 0 ? null : ids[i - 1]!,
        i % 2 === 0 ? "user" : "assistant",
        JSON.stringify(`${label} message ${i} — 你好 🌍`),
        now + i,
        now + i,
      ),
  );
  for (let i = 0; i < statements.length; i += 100) await dbOf(userId).batch(statements.slice(i, i + 100));
  return ids;
}

/** Reads a body chunk by chunk; `onChunk` runs after each chunk arrives. */
async function readChunks(res: Response, onChunk: (index: number) => void = () => {}) {
  const reader = res.body!.getReader();
  const chunks: Uint8Array[] = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    chunks.push(value);
    onChunk(chunks.length);
  }
  const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(
    chunks.reduce((all, c) => {
      const out = new Uint8Array(all.length + c.length);
      out.set(all);
      out.set(c, all.length);
      return out;
    }, new Uint8Array()),
  );
  return { chunks: chunks.length, text };
}

/** Alice: 4 conversations of 250 seeded messages each, then 2 more messages by a real turn. Bob: one of his own. */
async function seedAccounts() {
  const alice = newUser("export-alice");
  const bob = newUser("export-bob");
  const conversations: Conversation[] = [];
  for (let i = 0; i < 4; i++) {
    const conv = await createConversation(alice, { title: `Alice ${i}` });
    await seedMessages(alice, conv.id, 250, `alice-${i}`);
    conversations.push(conv);
  }
  // A real turn on the first (its answer comes from the stand-in).
  const { events } = await streamTurn(alice, conversations[0]!.id, {
    content: "one more [[stand-in tokens=3]]",
  });
  expect(events.at(-1)!.event).toBe("message.completed");
  const bobConv = await createConversation(bob, { title: "Bob's secret" });
  await seedMessages(bob, bobConv.id, 3, "bob-secret");
  return { alice, bob, conversations, bobConv };
}

afterEach(() => vi.restoreAllMocks());

describe("account export", () => {
  it("exports 1,002 messages as one valid JSON document, streamed in several chunks, with only the caller's data", async () => {
    const { alice, conversations, bobConv } = await seedAccounts();
    const res = await call(alice, "GET", "/account/export");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("content-disposition")).toMatch(
      /^attachment; filename="edge-chat-account-\d{4}-\d\d-\d\d\.json"$/,
    );
    const { chunks, text } = await readChunks(res);
    // One chunk per page of D1 reads, plus the opening and the closing.
    expect(chunks).toBeGreaterThanOrEqual(10);
    const doc = parseStrictJson(text) as AccountExport;
    expect(doc.user_id).toBe(alice);
    expect(Date.parse(doc.exported_at)).not.toBeNaN();
    expect(doc.files).toEqual([]);
    expect(doc.conversations.map((c) => c.id)).toEqual(conversations.map((c) => c.id));
    expect(doc.conversations.map((c) => c.messages.length)).toEqual([252, 250, 250, 250]);
    expect(doc.conversations.flatMap((c) => c.messages)).toHaveLength(1002);

    for (const conv of doc.conversations) {
      // Oldest first, each message of its own conversation.
      const ids = conv.messages.map((m) => m.id);
      expect(ids).toEqual([...ids].sort());
      expect(new Set(conv.messages.map((m) => m.conversation_id))).toEqual(new Set([conv.id]));
      // The same Conversation the API returns.
      const { messages, ...fields } = conv;
      expect(fields).toEqual(await (await call(alice, "GET", `/conversations/${conv.id}`)).json());
    }
    // And the same Message: the last two are the turn's, as the message list shows them.
    const first = doc.conversations[0]!.messages;
    expect(first.slice(-2).reverse()).toEqual((await listMessages(alice, conversations[0]!.id)).slice(0, 2));

    expect(text).not.toContain(bobConv.id);
    expect(text).not.toContain("bob-secret");
  });

  it("is written as it is read: each chunk is sent before the next page is read from D1", async () => {
    const { alice } = await seedAccounts();
    const log = vi.spyOn(console, "log");
    let roundTrips = 0;
    // The Worker's own app with its D1 binding counted (store/round-trips.ts): every batch() is one.
    // Every shard is counted (the account's rows are on one of them).
    const shards = shardDatabases(env).map((db, i) => [
      i === 0 ? "DB" : `DB_${i}`,
      countRoundTrips(db, () => roundTrips++),
    ]);
    const counted = { ...env, ...Object.fromEntries(shards) };
    const res = await app.request(`${BASE}/account/export`, { headers: await authHeaders(alice) }, counted);
    expect(res.status).toBe(200);
    const seen: number[] = [];
    const { chunks, text } = await readChunks(res, () => seen.push(roundTrips));
    const doc = parseStrictJson(text) as AccountExport;
    const items = doc.conversations.length + doc.conversations.flatMap((c) => c.messages).length;
    const walkPages = Math.ceil(items / EXPORT_PAGE_ITEMS);
    expect(walkPages).toBeGreaterThanOrEqual(10);
    // Then one page of files (none here): the read that tells the list is empty.
    const pages = walkPages + 1;
    // The opening before any read; then one page per chunk: when the client had chunk k, the
    // Worker had read k - 1 pages, and not one more.
    expect(seen).toEqual(Array.from({ length: chunks }, (_, k) => Math.min(k, pages)));
    expect(roundTrips).toBe(pages);
    // The operator's line says the same, with the request it belongs to.
    const line = log.mock.calls
      .map((args) => String(args[0]))
      .filter((text) => text.includes('"export.finished"'))
      .map((text) => JSON.parse(text) as Record<string, unknown>)
      .find((l) => l.user_id === alice);
    expect(line).toMatchObject({
      kind: "export.account",
      pages,
      conversations: 4,
      messages: 1002,
      request_id: res.headers.get("x-request-id"),
    });
  });

  it("of an account without conversations is an empty document", async () => {
    const nobody = newUser("export-empty");
    const res = await call(nobody, "GET", "/account/export");
    expect(res.status).toBe(200);
    const doc = parseStrictJson(await res.text()) as AccountExport;
    expect(doc).toEqual({ user_id: nobody, exported_at: doc.exported_at, conversations: [], files: [] });
  });
});

describe("conversation export", () => {
  it("returns the conversation and every message oldest first, across pages", async () => {
    const alice = newUser("export-conv");
    const conv = await createConversation(alice, { title: "Paged" });
    const ids = await seedMessages(alice, conv.id, 2 * EXPORT_PAGE_ITEMS + 7, "paged");
    // A second branch: a sibling of the third message (as an edit stores it).
    const sibling = newId();
    await dbOf(alice)
      .prepare(
        `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, content_json, status, created_at)
       VALUES (?, ?, ?, ?, 'user', '"edited"', 'completed', ?)`,
      )
      .bind(sibling, conv.id, alice, ids[1]!, Date.now())
      .run();
    const other = await createConversation(alice, { title: "Other" });
    await seedMessages(alice, other.id, 2, "other");

    const res = await call(alice, "GET", `/conversations/${conv.id}/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    expect(res.headers.get("content-disposition")).toMatch(/^attachment; /);
    const doc = parseStrictJson(await res.text()) as { conversation: Conversation; messages: Message[] };
    expect(doc.conversation).toEqual(await (await call(alice, "GET", `/conversations/${conv.id}`)).json());
    expect(doc.messages.map((m) => m.id)).toEqual([...ids, sibling]);
    expect(doc.messages.at(-1)).toEqual(await (await call(alice, "GET", `/messages/${sibling}`)).json());
    // Both versions at that point of the tree, as the API counts them.
    expect(doc.messages[2]).toMatchObject({ id: ids[2], sibling_index: 0, sibling_count: 2 });
    expect(doc.messages.at(-1)).toMatchObject({ sibling_index: 1, sibling_count: 2 });
  });

  it("is 404 for another user's conversation, a deleted one and a malformed id", async () => {
    const alice = newUser("export-404");
    const conv = await createConversation(alice);
    await expectError(
      await call(newUser("export-mallory"), "GET", `/conversations/${conv.id}/export`),
      404,
      "not_found",
    );
    await expectError(await call(alice, "GET", "/conversations/not-an-id/export"), 404, "not_found");
    expect((await call(alice, "DELETE", `/conversations/${conv.id}`)).status).toBe(204);
    await expectError(await call(alice, "GET", `/conversations/${conv.id}/export`), 404, "not_found");
  });

  it("needs authentication", async () => {
    const res = await exports.default.fetch(`${BASE}/account/export`);
    await expectError(res, 401, "unauthorized");
  });
});
