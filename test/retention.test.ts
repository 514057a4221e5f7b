import { createExecutionContext, createScheduledController, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config";
import { RETENTION_CRON, runRetention } from "../src/generation/retention";
import worker from "../src/index";
import type { SyncPage } from "../src/resources/sync";
import { shardDatabases } from "../src/store/shards";
import type { Conversation } from "../src/store/types";
import {
  call,
  createConversation,
  endMessage,
  newTag,
  newUser,
  openTurn,
  startedData,
  streamTurn,
} from "./helpers/api";
import { objectStorage } from "./helpers/object-storage";

// Retention (RETENTION_DAYS, README "Retention"): the daily cron deletes the conversations last
// active longer ago than that, through each conversation's Durable Object, in bounded batches per
// shard; an answer in flight is never cut, and the sync log keeps the tombstones.

const DAY_MS = 86_400_000;
/** The settings of these tests: retention on, 30 days. */
const retained = { ...env, RETENTION_DAYS: "30" };

/**
 * Test fixture: makes a conversation created through the API look last active `days` ago, by
 * setting its activity times in D1 (`updated_at`, and `last_message_at` when it has messages).
 * Nothing in the API can write a past time; production rows get old by waiting.
 */
async function backdate(conversationId: string, days: number): Promise<void> {
  const at = Date.now() - days * DAY_MS;
  let changed = 0;
  // On every shard: the row is on its owner's, and only there.
  for (const db of shardDatabases(env)) {
    const result = await db
      .prepare(
        `UPDATE conversations SET updated_at = ?1,
           last_message_at = CASE WHEN last_message_at IS NULL THEN NULL ELSE ?1 END
         WHERE id = ?2 RETURNING id`,
      )
      .bind(at, conversationId)
      .all();
    changed += result.results.length;
  }
  expect(changed).toBe(1);
}

/** A conversation with one completed turn whose texts contain `word` (indexed for search). */
async function chatted(userId: string, word: string): Promise<Conversation> {
  const conv = await createConversation(userId, { title: `About ${word}` });
  const { events } = await streamTurn(userId, conv.id, {
    content: `Tell me about ${word} [[stand-in tokens=3]]`,
  });
  expect(endMessage(events.at(-1)).status).toBe("completed");
  return conv;
}

/** Runs the daily cron as the runtime does, with `runEnv`. */
async function dailyCron(runEnv: Env): Promise<void> {
  const ctx = createExecutionContext();
  worker.scheduled(createScheduledController({ cron: RETENTION_CRON }), runEnv, ctx);
  await waitOnExecutionContext(ctx);
}

/** The conversation's rows in D1: itself, its messages, its search index entries. */
async function d1Rows(conversationId: string) {
  // Summed over the shards: a row left on any of them counts.
  const count = async (sql: string) => {
    let n = 0;
    for (const db of shardDatabases(env))
      n += (await db.prepare(sql).bind(conversationId).first<{ n: number }>())!.n;
    return n;
  };
  return {
    conversations: await count("SELECT COUNT(*) AS n FROM conversations WHERE id = ?"),
    messages: await count("SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?"),
    search_docs: await count("SELECT COUNT(*) AS n FROM search_docs WHERE conversation_id = ?"),
    search_text: await count(
      "SELECT COUNT(*) AS n FROM search_text WHERE rowid IN (SELECT doc_id FROM search_docs WHERE conversation_id = ?)",
    ),
  };
}

async function syncPage(userId: string, since: string | null): Promise<SyncPage> {
  const res = await call(userId, "GET", `/sync?${new URLSearchParams(since ? { since } : {})}`);
  expect(res.status).toBe(200);
  return (await res.json()) as SyncPage;
}

/** The conversations whose texts `GET /v1/search` finds `q` in. */
async function searchedConversations(userId: string, q: string): Promise<Set<string>> {
  const res = await call(userId, "GET", `/search?${new URLSearchParams({ q })}`);
  expect(res.status).toBe(200);
  return new Set(
    ((await res.json()) as { data: { conversation_id: string }[] }).data.map((h) => h.conversation_id),
  );
}

const exists = async (conversationId: string) => (await d1Rows(conversationId)).conversations === 1;

describe("retention", () => {
  it("the daily cron deletes exactly the conversations last active before the cutoff, with everything they had", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const word = newTag();
    const old = await chatted(alice, word);
    const oldEmpty = await createConversation(alice);
    const recent = await chatted(alice, word);
    const justInside = await chatted(alice, word);
    const bobsRecent = await chatted(bob, word);
    const bobsOld = await chatted(bob, word);
    await backdate(old.id, 31);
    await backdate(oldEmpty.id, 400);
    await backdate(justInside.id, 29);
    await backdate(bobsOld.id, 45);
    const since = (await syncPage(alice, null)).next_since;
    expect((await d1Rows(old.id)).search_docs).toBeGreaterThan(0);
    expect((await objectStorage(old.id)).rows).toBeGreaterThan(0);

    await dailyCron(retained);

    for (const conv of [old, oldEmpty, bobsOld]) {
      expect(await d1Rows(conv.id)).toEqual({
        conversations: 0,
        messages: 0,
        search_docs: 0,
        search_text: 0,
      });
      expect(await objectStorage(conv.id)).toEqual({ rows: 0, entries: 0, alarm: null });
    }
    for (const conv of [recent, justInside, bobsRecent]) {
      const rows = await d1Rows(conv.id);
      expect(rows.conversations).toBe(1);
      expect(rows.messages).toBe(2);
      expect(rows.search_docs).toBeGreaterThan(0);
      expect((await objectStorage(conv.id)).rows).toBeGreaterThan(0);
    }
    // Search finds only what is left: the word is in each conversation's title and question.
    expect(await searchedConversations(alice, word)).toEqual(new Set([recent.id, justInside.id]));
    expect(await searchedConversations(bob, word)).toEqual(new Set([bobsRecent.id]));

    // The sync log carries a tombstone for each deleted conversation, and nothing else changed.
    const changes = (await syncPage(alice, since)).changes;
    expect(changes.map((c) => [c.type, c.op, c.id]).sort()).toEqual(
      [
        ["conversation", "delete", old.id],
        ["conversation", "delete", oldEmpty.id],
      ].sort(),
    );
  });

  it("deletes nothing when RETENTION_DAYS is unset, empty or not a positive number", async () => {
    const alice = newUser("alice");
    const conv = await chatted(alice, newTag());
    await backdate(conv.id, 10_000);
    // wrangler.toml's setting: empty.
    expect(env.RETENTION_DAYS).toBe("");
    await dailyCron(env);
    for (const setting of [" ", "0", "-5", "thirty"]) {
      expect(await runRetention({ ...env, RETENTION_DAYS: setting }, Date.now())).toEqual({
        cutoff: null,
        shards: [],
      });
    }
    expect(loadConfig({}).retentionDays).toBeNull();
    expect(await exists(conv.id)).toBe(true);
    expect((await objectStorage(conv.id)).rows).toBeGreaterThan(0);
    // The cleanup of this test, and the check that the setting was all that kept it.
    await dailyCron(retained);
    expect(await exists(conv.id)).toBe(false);
  });

  it("skips a conversation whose answer is streaming, and leaves its answer whole", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await backdate(conv.id, 90);
    const phone = await openTurn(alice, conv.id, { content: "long [[stand-in tokens=60 itl=20]]" });
    startedData(await phone.next());
    // The turn has not moved the conversation's activity yet: only its end does.
    const conversation = await call(alice, "GET", `/conversations/${conv.id}`);
    const { updated_at } = (await conversation.json()) as Conversation;
    expect(Date.parse(updated_at)).toBeLessThan(Date.now() - 89 * DAY_MS);

    const report = await runRetention(retained, Date.now(), {
      perShard: 1000,
      pageSize: 50,
      deadline: Date.now() + 60_000,
    });
    expect(report.shards.reduce((n, s) => n + s.busy, 0)).toBeGreaterThanOrEqual(1);
    const rest = await phone.rest();
    expect(rest.at(-1)!.event).toBe("message.completed");
    expect(await exists(conv.id)).toBe(true);

    // Its end made it recent: the next run keeps it too.
    await dailyCron(retained);
    expect(await exists(conv.id)).toBe(true);
  });

  it("a run bounded by its batch size deletes the oldest first, and the next run continues", async () => {
    const alice = newUser("alice");
    const convs = [
      await createConversation(alice),
      await createConversation(alice),
      await createConversation(alice),
    ];
    // Older than anything another test leaves behind, oldest first.
    await backdate(convs[0]!.id, 3002);
    await backdate(convs[1]!.id, 3001);
    await backdate(convs[2]!.id, 3000);
    const bounds = () => ({ perShard: 2, pageSize: 1, deadline: Date.now() + 60_000 });

    const first = await runRetention(retained, Date.now(), bounds());
    // Alice's shard stopped at its bound, with more left.
    expect(first.shards.some((shard) => shard.deleted === 2 && !shard.complete)).toBe(true);
    expect([await exists(convs[0]!.id), await exists(convs[1]!.id), await exists(convs[2]!.id)]).toEqual([
      false,
      false,
      true,
    ]);

    const second = await runRetention(retained, Date.now(), bounds());
    expect(second.shards.some((shard) => shard.deleted >= 1)).toBe(true);
    expect(await exists(convs[2]!.id)).toBe(false);
  });

  it("a run past its deadline starts nothing", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await backdate(conv.id, 5000);
    const report = await runRetention(retained, Date.now(), { perShard: 1000, pageSize: 50, deadline: 0 });
    expect(report.shards.every((s) => s.deleted === 0 && !s.complete)).toBe(true);
    expect(await exists(conv.id)).toBe(true);
    await dailyCron(retained);
    expect(await exists(conv.id)).toBe(false);
  });
});
