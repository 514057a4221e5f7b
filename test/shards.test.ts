import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { UsageReport } from "../src/resources/usage";
import { fnv1a64, shardDatabases, shardIndex } from "../src/store/shards";
import type { Conversation } from "../src/store/types";
import { BASE, call, createConversation, eventually, expectError, newUser, streamTurn } from "./helpers/api";
import { authHeaders } from "./helpers/auth";
import { dbOf } from "./helpers/shards";

// User shards (src/store/shards.ts, store/SCHEMA.md "Shards"). The main project binds two local
// shards (DB, DB_1); the `one-shard` project runs this file with DB alone (vitest.config.ts).
const shards = shardDatabases(env);
const ADMIN = "http://localhost/admin/v1";

/** Tables with a `user_id` column: every row of them belongs to that user's shard. */
const USER_TABLES = [
  "conversations",
  "messages",
  "usage_records",
  "usage_daily",
  "quota_reservations",
  "api_keys",
  "files",
  "search_docs",
  "changes",
  "account_deletions",
] as const;

/** The user's rows on each shard, summed over {@link USER_TABLES} and `users`. */
async function rowsByShard(userId: string): Promise<number[]> {
  const counts = USER_TABLES.map((t) => `(SELECT COUNT(*) FROM ${t} WHERE user_id = ?1)`).join(" + ");
  return Promise.all(
    shards.map(async (db) => {
      const row = await db
        .prepare(`SELECT ${counts} + (SELECT COUNT(*) FROM users WHERE id = ?1) AS n`)
        .bind(userId)
        .first<{ n: number }>();
      return row!.n;
    }),
  );
}

/** One new user per shard, shard 0's first (found by trying fresh ids). */
function onePerShard(name: string): string[] {
  const users: (string | undefined)[] = shards.map(() => undefined);
  while (users.some((u) => u === undefined)) {
    const user = newUser(name);
    users[shardIndex(user, shards.length)] ??= user;
  }
  return users as string[];
}

const asAdmin = (path: string) =>
  exports.default.fetch(`${ADMIN}${path}`, { headers: { authorization: `Bearer ${env.ADMIN_TOKEN!}` } });

const withKey = (key: string, path: string) =>
  exports.default.fetch(`${BASE}${path}`, { headers: { authorization: `Bearer ${key}` } });

async function ok<T>(res: Response, status = 200): Promise<T> {
  expect(res.status, await res.clone().text()).toBe(status);
  return (await res.json()) as T;
}

/** Runs every user-facing route as `userId`; returns what was made. */
async function useEveryRoute(userId: string): Promise<{ conversation: Conversation; key: string }> {
  const conversation = await createConversation(userId, { title: "sharded" });
  const streamed = await streamTurn(userId, conversation.id, { content: "zebrafinch [[stand-in tokens=3]]" });
  expect(streamed.events.at(-1)?.event).toBe("message.completed");
  const turn = await ok<{ assistant_message: { id: string } }>(
    await call(userId, "POST", `/conversations/${conversation.id}/messages`, {
      content: "again [[stand-in tokens=2]]",
      stream: false,
    }),
  );
  await ok(await call(userId, "PATCH", `/conversations/${conversation.id}`, { title: "renamed" }));
  const list = await ok<{ data: { id: string }[] }>(await call(userId, "GET", "/conversations"));
  expect(list.data.map((c) => c.id)).toEqual([conversation.id]);
  await ok(await call(userId, "GET", `/conversations/${conversation.id}`));
  const messages = await ok<{ data: unknown[] }>(
    await call(userId, "GET", `/conversations/${conversation.id}/messages`),
  );
  expect(messages.data).toHaveLength(4);
  await ok(await call(userId, "GET", `/messages/${turn.assistant_message.id}`));
  // The useChat route's hydration reads the same shard.
  await ok(await call(userId, "GET", `/ui/conversations/${conversation.id}/messages`));
  await eventually(async () => {
    const found = await ok<{ data: unknown[] }>(await call(userId, "GET", "/search?q=zebrafinch"));
    return found.data.length >= 1;
  });
  const sync = await ok<{ changes: unknown[] }>(await call(userId, "GET", "/sync"));
  expect(sync.changes.length).toBeGreaterThanOrEqual(5);
  const exported = await call(userId, "GET", `/conversations/${conversation.id}/export`);
  expect(JSON.parse(await exported.text()).messages).toHaveLength(4);
  const account = await call(userId, "GET", "/account/export");
  expect(JSON.parse(await account.text()).conversations).toHaveLength(1);
  const png = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3]);
  const file = await ok<{ id: string }>(
    await exports.default.fetch(`${BASE}/files`, {
      method: "POST",
      headers: { ...(await authHeaders(userId)), "content-type": "image/png" },
      body: png,
    }),
    201,
  );
  await ok(await call(userId, "GET", `/files/${file.id}`));
  await ok(
    await call(userId, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: "hi [[stand-in tokens=2]]" }],
    }),
  );
  const { key } = await ok<{ key: string }>(await call(userId, "POST", "/api-keys", { name: "ci" }), 201);
  expect(key.endsWith(`_${fnv1a64(userId).toString(16).padStart(16, "0")}`)).toBe(true);
  const viaKey = await ok<{ data: { id: string }[] }>(await withKey(key, "/conversations"));
  expect(viaKey.data.map((c) => c.id)).toEqual([conversation.id]);
  await eventually(async () => {
    const usage = await ok<UsageReport>(await call(userId, "GET", "/usage"));
    return usage.totals.requests === 3;
  });
  return { conversation, key };
}

describe("user shards", () => {
  it("spreads users over every shard", () => {
    const counts = shards.map(() => 0);
    for (let i = 0; i < 400; i++) counts[shardIndex(newUser("spread"), shards.length)]!++;
    // Jump hash is uniform: with two shards each gets 200 ± 3σ (σ = 10).
    for (const n of counts) expect(n).toBeGreaterThan(400 / shards.length - 30);
  });

  it("serves every route for a user on any shard, with all their rows in their own shard only", async () => {
    const users = onePerShard("sharded");
    for (const [shard, userId] of users.entries()) {
      const { conversation, key } = await useEveryRoute(userId);
      const rows = await rowsByShard(userId);
      expect(rows[shard]).toBeGreaterThan(10);
      expect(rows.filter((_, i) => i !== shard)).toEqual(shards.slice(1).map(() => 0));
      // Another user on another shard sees none of it.
      const other = users[(shard + 1) % users.length]!;
      if (other !== userId)
        await expectError(await call(other, "GET", `/conversations/${conversation.id}`), 404, "not_found");
      // Account deletion empties the user's shard and leaves the key unusable.
      expect((await call(userId, "DELETE", "/account")).status).toBe(202);
      await expectError(await withKey(key, "/conversations"), 401, "unauthorized");
      await eventually(async () => {
        const left = await dbOf(userId)
          .prepare("SELECT COUNT(*) AS n FROM account_deletions WHERE user_id = ? AND finished_at IS NULL")
          .bind(userId)
          .first<{ n: number }>();
        return left!.n === 0;
      });
      const after = await rowsByShard(userId);
      expect(after.filter((_, i) => i !== shard)).toEqual(shards.slice(1).map(() => 0));
    }
  });

  it("finds a key made before shards (no routing hash) by asking every shard", async () => {
    for (const userId of onePerShard("oldkey")) {
      const bytes = crypto.getRandomValues(new Uint8Array(32));
      const key = `ec_${btoa(String.fromCharCode(...bytes))
        .replace(/\+/g, "-")
        .replace(/\//g, "_")
        .replace(/=+$/, "")}`;
      const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(key)));
      const hash = [...digest].map((b) => b.toString(16).padStart(2, "0")).join("");
      await dbOf(userId)
        .prepare(
          "INSERT INTO api_keys (id, user_id, name, prefix, key_hash, created_at) VALUES (?, ?, NULL, ?, ?, ?)",
        )
        .bind(crypto.randomUUID(), userId, key.slice(0, 11), hash, Date.now())
        .run();
      const conversation = await createConversation(userId);
      const listed = await ok<{ data: { id: string }[] }>(await withKey(key, "/conversations"));
      expect(listed.data.map((c) => c.id)).toEqual([conversation.id]);
    }
  });

  it("operator totals equal the sum over the shards, and the user list pages across shards", async () => {
    const users = [...onePerShard("totals"), ...onePerShard("totals")];
    for (const userId of users) {
      const conversation = await createConversation(userId);
      const res = await call(userId, "POST", `/conversations/${conversation.id}/messages`, {
        content: "count me [[stand-in tokens=4]]",
        stream: false,
      });
      expect(res.status).toBe(200);
    }
    const day = new Date().toISOString().slice(0, 10);
    const direct = await Promise.all(
      shards.map((db) =>
        db
          .prepare(
            "SELECT COALESCE(SUM(requests), 0) AS requests, COALESCE(SUM(total_tokens), 0) AS total_tokens FROM usage_daily WHERE day = ?",
          )
          .bind(day)
          .first<{ requests: number; total_tokens: number }>(),
      ),
    );
    const report = await ok<UsageReport>(await asAdmin(`/usage?from=${day}&to=${day}`));
    expect(report.totals.requests).toBe(direct.reduce((n, r) => n + r!.requests, 0));
    expect(report.totals.total_tokens).toBe(direct.reduce((n, r) => n + r!.total_tokens, 0));
    expect(report.totals.requests).toBeGreaterThanOrEqual(users.length);

    // Every user of every shard, once each, in id order, three a page.
    const all = (
      await Promise.all(shards.map((db) => db.prepare("SELECT id FROM users").all<{ id: string }>()))
    ).flatMap((r) => r.results.map((u) => u.id));
    const seen: string[] = [];
    for (let cursor = ""; ; ) {
      const page = await ok<{ data: { id: string }[]; next_cursor: string | null; incomplete: boolean }>(
        await asAdmin(`/users?limit=3${cursor ? `&cursor=${cursor}` : ""}`),
      );
      expect(page.incomplete).toBe(false);
      seen.push(...page.data.map((u) => u.id));
      if (page.next_cursor === null) break;
      cursor = page.next_cursor;
    }
    expect(seen).toEqual([...all].sort());
    for (const userId of users) expect(seen).toContain(userId);
  });

  it("says so when a shard fails: the user list is incomplete, the totals are 503", async () => {
    const broken = shards.length - 1;
    const users = onePerShard("broken");
    for (const userId of users) await createConversation(userId);
    const db = shards[broken]!;
    await db.batch([
      db.prepare("ALTER TABLE users RENAME TO users_away"),
      db.prepare("ALTER TABLE usage_daily RENAME TO usage_daily_away"),
    ]);
    try {
      const page = await ok<{ data: { id: string }[]; incomplete: boolean; failed_shards: number[] }>(
        await asAdmin("/users?limit=100"),
      );
      expect(page.incomplete).toBe(true);
      expect(page.failed_shards).toEqual([broken]);
      await expectError(await asAdmin("/usage"), 503, "shard_unavailable");
    } finally {
      await db.batch([
        db.prepare("ALTER TABLE users_away RENAME TO users"),
        db.prepare("ALTER TABLE usage_daily_away RENAME TO usage_daily"),
      ]);
    }
    const healed = await ok<{ incomplete: boolean; failed_shards: number[] }>(
      await asAdmin("/users?limit=100"),
    );
    expect(healed).toMatchObject({ incomplete: false, failed_shards: [] });
  });
});
