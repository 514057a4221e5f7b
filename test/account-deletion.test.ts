import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { deleteAccount, purgeAccountDeletion } from "../src/generation/account-deletion";
import worker from "../src/index";
import type { SyncPage } from "../src/resources/sync";
import type { UsageReport } from "../src/resources/usage";
import type { Conversation, Message } from "../src/store/types";
import {
  BASE,
  call,
  createConversation,
  endMessage,
  eventually,
  expectError,
  newUser,
  openTurn,
  resume,
  SseReader,
  startedData,
  streamTurn,
} from "./helpers/api";
import { objectStorage } from "./helpers/object-storage";
import { countUserRows } from "./helpers/rows";
import { dbOf } from "./helpers/shards";

// API.md §2.3: DELETE /v1/account (JWT only) → 202 {deleted:{conversations, messages, files,
// api_keys}}: everything of the caller hidden at once and purged in the background (D1, each
// conversation's Durable Object storage, KV); the operator's settings and today's budget
// consumption survive; a sync token from before is 410 sync_expired; idempotent.

const ADMIN = "http://localhost/admin/v1";

/** Calls the Worker with an API key instead of a JWT. */
function withKey(key: string, method: string, path: string): Promise<Response> {
  return exports.default.fetch(`${BASE}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
}

function asAdmin(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  return exports.default.fetch(`${ADMIN}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function createKey(userId: string): Promise<{ id: string; key: string }> {
  const res = await call(userId, "POST", "/api-keys", {});
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; key: string };
}

/** SHA-256 hex, computed here independently of the Worker's code. */
async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

const cacheKeyOf = async (key: string) => `apikey:${await sha256Hex(key)}`;

interface Deleted {
  deleted: { conversations: number; messages: number; files: number; api_keys: number };
}

async function deleteAccountVia(userId: string): Promise<Deleted> {
  const res = await call(userId, "DELETE", "/account");
  expect(res.status).toBe(202);
  return (await res.json()) as Deleted;
}

/** A turn read to its end; returns the stored user message and answer. */
async function turn(userId: string, conversationId: string, content: string): Promise<[Message, Message]> {
  const { events } = await streamTurn(userId, conversationId, { content });
  const answer = endMessage(events.at(-1));
  expect(answer.status).toBe("completed");
  return [startedData(events[0]).user_message as Message, answer as Message];
}

async function snapshotToken(userId: string): Promise<string> {
  const res = await call(userId, "GET", "/sync?limit=500");
  expect(res.status).toBe(200);
  const page = (await res.json()) as SyncPage;
  expect(page.has_more).toBe(false);
  return page.next_since;
}

async function listConversations(userId: string): Promise<Conversation[]> {
  const res = await call(userId, "GET", "/conversations?archived=all");
  expect(res.status).toBe(200);
  return ((await res.json()) as { data: Conversation[] }).data;
}

/** Whether every deletion of the user is finished (the background purge ran to its end). */
async function purged(userId: string): Promise<boolean> {
  const row = await dbOf(userId)
    .prepare(
      "SELECT COUNT(*) AS n, SUM(finished_at IS NULL) AS open FROM account_deletions WHERE user_id = ?",
    )
    .bind(userId)
    .first<{ n: number; open: number | null }>();
  return row!.n > 0 && row!.open === 0;
}

describe("DELETE /v1/account", () => {
  it("hides everything of the caller at once, purges it, and leaves others alone", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const first = await createConversation(alice, { title: "first" });
    const second = await createConversation(alice);
    const messages = [
      ...(await turn(alice, first.id, "one [[stand-in tokens=3]]")),
      ...(await turn(alice, first.id, "two [[stand-in tokens=3]]")),
      ...(await turn(alice, second.id, "three [[stand-in tokens=3]]")),
    ];
    const used = await createKey(alice);
    const unused = await createKey(alice);
    // The key's lookup is cached in KV by its first use (written after the response).
    expect((await withKey(used.key, "GET", "/conversations")).status).toBe(200);
    const usedCache = await cacheKeyOf(used.key);
    await eventually(async () => (await env.CACHE.get(usedCache)) !== null);
    const token = await snapshotToken(alice);

    const bobs = await createConversation(bob);
    const [, bobAnswer] = await turn(bob, bobs.id, "bob's [[stand-in tokens=3]]");

    // An API key cannot delete the account, and its attempt changes nothing.
    await expectError(await withKey(used.key, "DELETE", "/account"), 403, "forbidden");
    expect(await listConversations(alice)).toHaveLength(2);

    expect(await deleteAccountVia(alice)).toEqual({
      deleted: { conversations: 2, messages: 6, files: 0, api_keys: 2 },
    });
    // A snapshot taken right after the 202 stays good while the purge runs.
    const after = await snapshotToken(alice);

    // At once, before any purge: lists are empty, every id is 404, every key is 401.
    expect(await listConversations(alice)).toEqual([]);
    for (const conv of [first, second]) {
      await expectError(await call(alice, "GET", `/conversations/${conv.id}`), 404, "not_found");
      await expectError(await call(alice, "GET", `/conversations/${conv.id}/messages`), 404, "not_found");
      await expectError(await call(alice, "GET", `/conversations/${conv.id}/export`), 404, "not_found");
    }
    for (const m of messages) {
      await expectError(await call(alice, "GET", `/messages/${m.id}`), 404, "not_found");
      if (m.role === "assistant") await expectError(await resume(alice, m.id), 404, "not_found");
    }
    for (const key of [used.key, unused.key])
      await expectError(await withKey(key, "GET", "/conversations"), 401, "unauthorized");
    expect(((await (await call(alice, "GET", "/api-keys")).json()) as { data: unknown[] }).data).toEqual([]);
    await expectError(
      await call(alice, "GET", `/sync?since=${encodeURIComponent(token)}`),
      410,
      "sync_expired",
    );
    const exported = (await (await call(alice, "GET", "/account/export")).json()) as {
      conversations: unknown[];
    };
    expect(exported.conversations).toEqual([]);

    // Bob's data is untouched.
    expect((await listConversations(bob)).map((c) => c.id)).toEqual([bobs.id]);
    expect((await call(bob, "GET", `/messages/${bobAnswer.id}`)).status).toBe(200);

    // The purge completes: nothing of Alice's content is left in D1, KV or the objects.
    await eventually(() => purged(alice));
    for (const table of ["conversations", "messages", "api_keys"] as const)
      expect(await countUserRows(table, alice)).toBe(0);
    const items = await dbOf(alice)
      .prepare(
        "SELECT COUNT(*) AS n FROM account_deletion_items WHERE deletion_id IN (SELECT id FROM account_deletions WHERE user_id = ?)",
      )
      .bind(alice)
      .first<{ n: number }>();
    expect(items!.n).toBe(0);
    // No cached lookup names the user any more (a refused key's lookup is cached as unknown).
    expect([null, { unknown: true }]).toContainEqual(await env.CACHE.get(usedCache, "json"));
    for (const conv of [first, second])
      expect(await objectStorage(conv.id)).toEqual({ rows: 0, entries: 0, alarm: null });
    expect((await objectStorage(bobs.id)).rows).toBeGreaterThan(0);
    expect((await call(alice, "GET", `/sync?since=${encodeURIComponent(after)}`)).status).toBe(200);
    // The key stays refused once its cached lookup is gone.
    await expectError(await withKey(used.key, "GET", "/conversations"), 401, "unauthorized");

    // A second deletion finds nothing left.
    expect(await deleteAccountVia(alice)).toEqual({
      deleted: { conversations: 0, messages: 0, files: 0, api_keys: 0 },
    });

    // The same user starts afresh.
    const fresh = await createConversation(alice);
    await turn(alice, fresh.id, "again [[stand-in tokens=3]]");
    expect((await listConversations(alice)).map((c) => c.id)).toEqual([fresh.id]);
    const again = await snapshotToken(alice);
    expect(again).not.toBe(token);
  });

  it("stops an answer in flight: its streams end with message.failed", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const phone = await openTurn(alice, conv.id, { content: "long [[stand-in tokens=400 itl=10]]" });
    const messageId = startedData(await phone.next()).assistant_message.id;
    const tablet = new SseReader(await resume(alice, messageId));
    for (let i = 0; i < 3; i++) await phone.next();

    expect((await deleteAccountVia(alice)).deleted).toMatchObject({ conversations: 1, messages: 2 });

    for (const reader of [phone, tablet]) {
      const rest = await reader.rest();
      expect(rest.filter((e) => e.event === "message.completed")).toEqual([]);
      const ended = endMessage(rest.at(-1));
      expect(rest.at(-1)!.event).toBe("message.failed");
      expect(ended).toMatchObject({
        id: messageId,
        status: "cancelled",
        error: { code: "conversation_deleted" },
      });
    }
    await expectError(await resume(alice, messageId), 404, "not_found");
    await eventually(() => purged(alice));
    expect(await objectStorage(conv.id)).toEqual({ rows: 0, entries: 0, alarm: null });
    // What was generated was billed, and the record stays (today's), detached from the conversation.
    const record = await dbOf(alice)
      .prepare("SELECT conversation_id, completion_tokens FROM usage_records WHERE id = ?")
      .bind(messageId)
      .first<{ conversation_id: string | null; completion_tokens: number }>();
    expect(record).toMatchObject({ conversation_id: null });
    expect(record!.completion_tokens).toBeGreaterThan(0);
  });

  it("keeps the operator's settings and today's consumption of the budget", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await turn(alice, conv.id, "spend [[stand-in tokens=20]]");
    const usage = async () => {
      const res = await call(alice, "GET", "/usage");
      expect(res.status).toBe(200);
      return ((await res.json()) as UsageReport).totals;
    };
    const spent = await usage();
    expect(spent.total_tokens).toBeGreaterThan(0);
    // An earlier day's ledger, which the purge deletes.
    await dbOf(alice).batch([
      dbOf(alice)
        .prepare(
          "INSERT INTO usage_daily (user_id, day, model, requests, total_tokens) VALUES (?, '2020-01-01', 'qwen-plus', 1, 5)",
        )
        .bind(alice),
      dbOf(alice)
        .prepare(
          `INSERT INTO usage_records (id, user_id, conversation_id, model, status, day, prompt_tokens, completion_tokens,
           total_tokens, cached_tokens, reasoning_tokens, cost_usd, settled_by, created_at)
         VALUES (?, ?, ?, 'qwen-plus', 'completed', '2020-01-01', 3, 2, 5, 0, 0, 0, 'old', 0)`,
        )
        .bind(crypto.randomUUID(), alice, conv.id),
    ]);
    // A budget of exactly what was spent today: nothing is left of it.
    expect(
      (await asAdmin("PUT", `/users/${alice}/budget`, { daily_token_budget: spent.total_tokens })).status,
    ).toBe(200);
    expect((await asAdmin("PUT", `/users/${alice}/rate-limit`, { tier: "relaxed" })).status).toBe(200);
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "more", stream: false }),
      429,
      "quota_exceeded",
    );
    const limitsBefore = await (await asAdmin("GET", `/users/${alice}`)).json();

    await deleteAccountVia(alice);
    await eventually(() => purged(alice));

    // The settings are the operator's: unchanged.
    expect(await (await asAdmin("GET", `/users/${alice}`)).json()).toEqual(limitsBefore);
    // Today's consumption still counts: the budget is still used up, for a fresh conversation too.
    expect(await usage()).toEqual(spent);
    const fresh = await createConversation(alice);
    await expectError(
      await call(alice, "POST", `/conversations/${fresh.id}/messages`, { content: "more", stream: false }),
      429,
      "quota_exceeded",
    );
    // Earlier days are purged.
    const old = await dbOf(alice)
      .prepare(
        "SELECT (SELECT COUNT(*) FROM usage_daily WHERE user_id = ?1 AND day < '2021-01-01') + (SELECT COUNT(*) FROM usage_records WHERE user_id = ?1 AND day < '2021-01-01') AS n",
      )
      .bind(alice)
      .first<{ n: number }>();
    expect(old!.n).toBe(0);
    // With room in the budget, the fresh account works.
    expect(
      (await asAdmin("PUT", `/users/${alice}/budget`, { daily_token_budget: spent.total_tokens + 100_000 }))
        .status,
    ).toBe(200);
    await turn(alice, fresh.id, "now [[stand-in tokens=3]]");
  });

  it("a blocked user stays blocked", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    expect((await asAdmin("POST", `/users/${alice}/block`)).status).toBe(200);
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "hi" }),
      403,
      "forbidden",
    );

    expect((await deleteAccountVia(alice)).deleted.conversations).toBe(1);
    await eventually(() => purged(alice));

    expect(((await (await asAdmin("GET", `/users/${alice}`)).json()) as { blocked: boolean }).blocked).toBe(
      true,
    );
    const fresh = await createConversation(alice);
    await expectError(
      await call(alice, "POST", `/conversations/${fresh.id}/messages`, { content: "hi" }),
      403,
      "forbidden",
    );
    await expectError(await call(alice, "POST", "/api-keys", {}), 403, "forbidden");
  });

  it("the purge after the 202 does not hide again: a snapshot taken meanwhile stays good", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await turn(alice, conv.id, "one [[stand-in tokens=3]]");
    // What the route does, step by step: hide, answer, then purge.
    const { deletion } = await deleteAccount(env, alice);
    const token = await snapshotToken(alice);
    expect(await purgeAccountDeletion(env, deletion, Date.now() + 20_000)).toBe(true);
    expect((await call(alice, "GET", `/sync?since=${encodeURIComponent(token)}`)).status).toBe(200);
    expect(await objectStorage(conv.id)).toEqual({ rows: 0, entries: 0, alarm: null });
  });

  describe("a purge cut off after the account was hidden", () => {
    /** What the request does before its 202, without the purge after it; then its run dies. */
    async function hiddenOnly(userId: string) {
      const conv = await createConversation(userId);
      await turn(userId, conv.id, "kept until purged [[stand-in tokens=3]]");
      const { key } = await createKey(userId);
      expect((await withKey(key, "GET", "/conversations")).status).toBe(200);
      const cacheKey = await cacheKeyOf(key);
      await eventually(async () => (await env.CACHE.get(cacheKey)) !== null);
      const { deletion } = await deleteAccount(env, userId);
      // Hidden by what runs before the 202 alone: the key's cached lookup is already gone.
      expect(await env.CACHE.get(cacheKey)).toBeNull();
      await expectError(await withKey(key, "GET", "/conversations"), 401, "unauthorized");
      expect(await listConversations(userId)).toEqual([]);
      expect((await objectStorage(conv.id)).rows).toBeGreaterThan(0);
      expect(await purged(userId)).toBe(false);
      // The run that held it died: its lease runs out.
      await dbOf(userId)
        .prepare("UPDATE account_deletions SET lease_until = 0 WHERE id = ?")
        .bind(deletion.id)
        .run();
      return conv;
    }

    it("completes by itself, in the cron's run", async () => {
      const alice = newUser("alice");
      const conv = await hiddenOnly(alice);
      const ctx = createExecutionContext();
      worker.scheduled(createScheduledController({ cron: "*/10 * * * *" }), env, ctx);
      await waitOnExecutionContext(ctx);
      expect(await purged(alice)).toBe(true);
      expect(await objectStorage(conv.id)).toEqual({ rows: 0, entries: 0, alarm: null });
    });

    it("completes on a retried DELETE, which reports nothing left", async () => {
      const alice = newUser("alice");
      const conv = await hiddenOnly(alice);
      expect(await deleteAccountVia(alice)).toEqual({
        deleted: { conversations: 0, messages: 0, files: 0, api_keys: 0 },
      });
      await eventually(() => purged(alice));
      expect(await objectStorage(conv.id)).toEqual({ rows: 0, entries: 0, alarm: null });
    });
  });
});
