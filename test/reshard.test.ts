import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  copyUser,
  markMoved,
  markMoving,
  moveUser,
  type QueryCounter,
  USER_TABLES,
} from "../src/store/reshard";
import type { ReshardStep } from "../src/store/reshard-pass";
import { UserMovingError } from "../src/store/reshard-routing";
import { readBookmark } from "../src/store/sessions";
import { bookmarkShard, routingHash, shardDatabases, shardIndex, userDb } from "../src/store/shards";
import { BASE, call, createConversation, eventually, expectError, newUser, streamTurn } from "./helpers/api";
import { filePart, jpegOf, upload, VISION_MODEL } from "./helpers/images";

// A reshard from 2 shards to 3 (store/SCHEMA.md "Shards"): the `reshard` project binds DB, DB_1
// and DB_2 with RESHARD_FROM = "2" (vitest.config.ts), so users live where 2 shards put them until
// `POST /admin/v1/reshard` moves those whose shard is 2 under the new count.
const shards = shardDatabases(env);
const ADMIN = "http://localhost/admin/v1";
const OLD = 2;
const NEW = 3;

/**
 * Where each table's rows of user `?1` are: every table of the schema but the migrations' own,
 * the FTS5 index's shadow tables (read through `search_docs` below) and the reshard's own.
 */
const OWNERS: Record<string, string> = {
  users: "id = ?1",
  conversations: "user_id = ?1",
  messages: "user_id = ?1",
  message_files: "user_id = ?1",
  files: "user_id = ?1",
  api_keys: "user_id = ?1",
  usage_records: "user_id = ?1",
  usage_daily: "user_id = ?1",
  quota_reservations: "user_id = ?1",
  account_deletions: "user_id = ?1",
  account_deletion_items: "deletion_id IN (SELECT id FROM account_deletions WHERE user_id = ?1)",
  webhook_outbox: "user_id = ?1",
  changes: "user_id = ?1",
  search_docs: "user_id = ?1",
};

/** Every row of `userId` on `db`, per table, as sorted JSON lines; search rows with their text, not their rowid. */
async function snapshot(db: D1Database, userId: string): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const [table, owner] of Object.entries(OWNERS)) {
    const select =
      table === "search_docs"
        ? `SELECT d.user_id, d.conversation_id, d.message_id, d.ref_id, d.role, d.created_at, s.body
           FROM search_docs d LEFT JOIN search_text s ON s.rowid = d.doc_id WHERE d.${owner}`
        : `SELECT * FROM ${table} WHERE ${owner}`;
    const { results } = await db.prepare(select).bind(userId).all();
    out[table] = results.map((r) => JSON.stringify(r)).sort();
  }
  return out;
}

const rowCount = (s: Record<string, string[]>) => Object.values(s).reduce((n, rows) => n + rows.length, 0);

/** A new user whose shard is `oldShard` with 2 shards and `newShard` with 3. */
function userMoving(name: string, oldShard: number, newShard: number): string {
  for (;;) {
    const user = newUser(name);
    if (shardIndex(user, OLD) === oldShard && shardIndex(user, NEW) === newShard) return user;
  }
}

async function ok<T>(res: Response, status = 200): Promise<T> {
  expect(res.status, await res.clone().text()).toBe(status);
  return (await res.json()) as T;
}

const reshardStep = (body: unknown) =>
  exports.default.fetch(`${ADMIN}/reshard`, {
    method: "POST",
    headers: { authorization: `Bearer ${env.ADMIN_TOKEN!}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });

/** Runs reshard steps as `npm run reshard` does, until a pass ends with nothing busy or failed. */
async function runReshard(maxUsers = 3): Promise<ReshardStep[]> {
  const steps: ReshardStep[] = [];
  for (let passes = 0; passes < 10; passes++) {
    let cursor: ReshardStep["cursor"] = null;
    let left = 0;
    do {
      const step: ReshardStep = await ok<ReshardStep>(await reshardStep({ cursor, max_users: maxUsers }));
      steps.push(step);
      left += step.busy.length + step.failed.length;
      cursor = step.cursor;
    } while (cursor);
    if (left === 0) return steps;
  }
  throw new Error("the reshard did not finish in 10 passes");
}

/** Makes rows in every table a user's ordinary use writes; returns an API key and a sync token. */
async function populate(userId: string): Promise<{ key: string; since: string; fileId: string }> {
  const conversation = await createConversation(userId, { title: "weaverbird notes" });
  const streamed = await streamTurn(userId, conversation.id, { content: "weaverbird [[stand-in tokens=3]]" });
  expect(streamed.events.at(-1)?.event).toBe("message.completed");
  await ok(
    await call(userId, "POST", `/conversations/${conversation.id}/messages`, {
      content: "again 🐦 [[stand-in tokens=2]]",
      stream: false,
    }),
  );
  await ok(await call(userId, "PATCH", `/conversations/${conversation.id}`, { system_prompt: "Be brief." }));
  const file = await upload(userId, jpegOf(64, 48));
  const vision = await createConversation(userId, { model: VISION_MODEL });
  await ok(
    await call(userId, "POST", `/conversations/${vision.id}/messages`, {
      content: [{ type: "text", text: "what is this" }, filePart(file.id)],
      stream: false,
    }),
  );
  await ok(
    await call(userId, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: "hi [[stand-in tokens=2]]" }],
    }),
  );
  const { key } = await ok<{ key: string }>(await call(userId, "POST", "/api-keys", { name: "ci" }), 201);
  const sync = await ok<{ next_since: string }>(await call(userId, "GET", "/sync"));
  return { key, since: sync.next_since, fileId: file.id };
}

const withKey = (key: string, path: string) =>
  exports.default.fetch(`${BASE}${path}`, { headers: { authorization: `Bearer ${key}` } });

describe("reshard from 2 shards to 3", () => {
  it("copies every table of the schema (a new table must be added to the mover)", async () => {
    const { results } = await shards[0]!
      .prepare(
        `SELECT name FROM sqlite_master WHERE type = 'table'
           AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name NOT LIKE 'd1_%'
           AND name NOT LIKE 'search_text%' AND name NOT IN ('shard_moves', 'shard_write_checks')`,
      )
      .all<{ name: string }>();
    const schema = results.map((r) => r.name).sort();
    expect(Object.keys(OWNERS).sort()).toEqual(schema);
    expect([...USER_TABLES.map((t) => t.name), "search_docs"].sort()).toEqual(schema);
  });

  it("moves only the users whose shard changed, losing nothing, while the others send turns", async () => {
    const movers = [userMoving("mover", 0, 2), userMoving("mover", 1, 2)];
    const stayers = [userMoving("stayer", 0, 0), userMoving("stayer", 1, 1)];
    const made = new Map<string, Awaited<ReturnType<typeof populate>>>();
    for (const user of [...movers, ...stayers]) made.set(user, await populate(user));
    const before = new Map<string, Record<string, string[]>>();
    for (const user of [...movers, ...stayers])
      before.set(user, await snapshot(shards[shardIndex(user, OLD)]!, user));
    for (const user of movers) expect(rowCount(before.get(user)!)).toBeGreaterThan(30);

    // The others keep working during the reshard: a turn each, sent while the steps run.
    const stayerConversations = await Promise.all(stayers.map((u) => createConversation(u)));
    const turns = stayers.map((user, i) =>
      call(user, "POST", `/conversations/${stayerConversations[i]!.id}/messages`, {
        content: "during the reshard [[stand-in tokens=4 ttft=300 itl=50]]",
        stream: false,
      }),
    );
    const [steps, ...answers] = await Promise.all([runReshard(1), ...turns]);
    for (const res of answers) expect(res.status, await res.clone().text()).toBe(200);

    const moved = steps.flatMap((s) => s.moved.map((m) => m.user_id));
    // Every user the steps moved changed shard; both movers are among them.
    for (const user of moved) expect(shardIndex(user, NEW)).not.toBe(shardIndex(user, OLD));
    expect(moved).toEqual(expect.arrayContaining(movers));
    for (const user of movers) {
      const old = shards[shardIndex(user, OLD)]!;
      // Counts and contents of every table, before on the old shard and after on the new one.
      expect(await snapshot(shards[2]!, user)).toEqual(before.get(user));
      expect(rowCount(await snapshot(old, user))).toBe(0);
      const move = await old
        .prepare("SELECT state, target_shard FROM shard_moves WHERE routing_hash = ?")
        .bind(routingHash(user))
        .first();
      expect(move).toEqual({ state: "moved", target_shard: 2 });
    }
    for (const user of stayers) {
      const now = await snapshot(shards[shardIndex(user, OLD)]!, user);
      // Untouched: every row from before is still there (the turn added more), none on shard 2.
      for (const table of ["conversations", "messages", "files", "api_keys", "usage_records", "search_docs"])
        expect(now[table]).toEqual(expect.arrayContaining(before.get(user)![table]!));
      expect(now.messages!.length).toBe(before.get(user)!.messages!.length + 2);
      expect(rowCount(await snapshot(shards[2]!, user))).toBe(0);
    }

    // A moved user's API key, search, sync, files and new turns work, on the new shard.
    for (const user of movers) {
      const { key, since, fileId } = made.get(user)!;
      const listed = await ok<{ data: { id: string }[] }>(await withKey(key, "/conversations"));
      expect(listed.data).toHaveLength(2);
      const found = await ok<{ data: unknown[] }>(await call(user, "GET", "/search?q=weaverbird"));
      expect(found.data.length).toBeGreaterThanOrEqual(2);
      const quiet = await ok<{ changes: unknown[] }>(
        await call(user, "GET", `/sync?since=${encodeURIComponent(since)}`),
      );
      expect(quiet.changes).toEqual([]);
      await ok(await call(user, "GET", `/files/${fileId}`));
      const conversation = await createConversation(user);
      await ok(
        await call(user, "POST", `/conversations/${conversation.id}/messages`, {
          content: "after the move [[stand-in tokens=2]]",
          stream: false,
        }),
      );
      const changed = await ok<{ changes: { id: string }[] }>(
        await call(user, "GET", `/sync?since=${encodeURIComponent(since)}`),
      );
      expect(changed.changes.map((c) => c.id)).toContain(conversation.id);
      const row = await shards[2]!
        .prepare("SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?")
        .bind(conversation.id)
        .first<{ n: number }>();
      expect(row?.n).toBe(2);
    }
  });

  it("refuses a moving user's writes with 503 resharding and Retry-After, and serves their reads", async () => {
    const user = userMoving("moving", 1, 2);
    const conversation = await createConversation(user, { title: "kept" });
    const old = shards[1]!;
    expect(await markMoving(old, user, { fromCount: OLD, toCount: NEW, targetShard: 2 }, Date.now())).toBe(
      true,
    );

    const refused = await call(user, "POST", "/conversations", {});
    await expectError(refused, 503, "resharding");
    expect(Number(refused.headers.get("retry-after"))).toBeGreaterThan(0);
    const turn = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content: "refused [[stand-in tokens=2]]",
      stream: false,
    });
    await expectError(turn, 503, "resharding");
    expect(turn.headers.get("retry-after")).not.toBeNull();
    const listed = await ok<{ data: { id: string }[] }>(await call(user, "GET", "/conversations"));
    expect(listed.data.map((c) => c.id)).toEqual([conversation.id]);
    // Nothing of the refused writes reached either shard.
    const count = await old
      .prepare("SELECT COUNT(*) AS n FROM conversations WHERE user_id = ?")
      .bind(user)
      .first();
    expect(count).toEqual({ n: 1 });

    await runReshard();
    await ok(await call(user, "POST", "/conversations", {}), 201);
    const listedAfter = await ok<{ data: unknown[] }>(await call(user, "GET", "/conversations"));
    expect(listedAfter.data).toHaveLength(2);
  });

  it("resumes a run cut off mid-copy or after the switch, with nothing lost or duplicated", async () => {
    const cutMidCopy = userMoving("cut-copy", 0, 2);
    const cutAfterSwitch = userMoving("cut-switch", 1, 2);
    for (const user of [cutMidCopy, cutAfterSwitch]) await populate(user);
    const before = new Map<string, Record<string, string[]>>();
    for (const user of [cutMidCopy, cutAfterSwitch])
      before.set(user, await snapshot(shards[shardIndex(user, OLD)]!, user));
    const target = { fromCount: OLD, toCount: NEW, targetShard: 2 };

    // Cut off at the 6th statement of the copy: some tables copied, some not, the user `moving`.
    let queries = 0;
    const cutOff: QueryCounter = {
      get queries() {
        return queries;
      },
      set queries(n: number) {
        if (n > 6) throw new Error("cut off");
        queries = n;
      },
    };
    expect(await markMoving(shards[0]!, cutMidCopy, target, Date.now())).toBe(true);
    await expect(copyUser(shards[0]!, shards[2]!, cutMidCopy, cutOff)).rejects.toThrow("cut off");
    const partial = rowCount(await snapshot(shards[2]!, cutMidCopy));
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(rowCount(before.get(cutMidCopy)!));
    // Meanwhile the user's reads are still served from the old shard, whole.
    const listed = await ok<{ data: unknown[] }>(await call(cutMidCopy, "GET", "/conversations"));
    expect(listed.data).toHaveLength(2);

    // Cut off after the switch: copied and `moved`, the old rows not yet deleted.
    const n = { queries: 0 };
    expect(await markMoving(shards[1]!, cutAfterSwitch, target, Date.now())).toBe(true);
    await copyUser(shards[1]!, shards[2]!, cutAfterSwitch, n);
    await markMoved(shards[1]!, cutAfterSwitch, Date.now());
    // Routed to the new shard already: a write lands there.
    const created = await createConversation(cutAfterSwitch);
    const onNew = await shards[2]!
      .prepare("SELECT user_id FROM conversations WHERE id = ?")
      .bind(created.id)
      .first();
    expect(onNew).toEqual({ user_id: cutAfterSwitch });

    await runReshard();
    expect(await snapshot(shards[2]!, cutMidCopy)).toEqual(before.get(cutMidCopy));
    expect(rowCount(await snapshot(shards[0]!, cutMidCopy))).toBe(0);
    expect(rowCount(await snapshot(shards[1]!, cutAfterSwitch))).toBe(0);
    const after = await snapshot(shards[2]!, cutAfterSwitch);
    for (const table of ["messages", "files", "api_keys", "usage_records", "usage_daily", "search_docs"])
      expect(after[table]).toEqual(before.get(cutAfterSwitch)![table]);
    await eventually(async () => {
      const res = await call(cutMidCopy, "GET", "/search?q=weaverbird");
      return ((await res.json()) as { data: unknown[] }).data.length >= 2;
    });
  });

  it("routes a moving user's D1 sessions: reads from the old shard, writes refused, then the new shard", async () => {
    const user = userMoving("session", 0, 2);
    const conversation = await createConversation(user, { title: "in a session" });
    expect(
      await markMoving(shards[0]!, user, { fromCount: OLD, toCount: NEW, targetShard: 2 }, Date.now()),
    ).toBe(true);
    const read = "SELECT id FROM conversations WHERE user_id = ?";
    const session = userDb(env, user).withSession("first-primary");
    const { results } = await session.prepare(read).bind(user).all<{ id: string }>();
    expect(results.map((r) => r.id)).toEqual([conversation.id]);
    const bookmark = session.getBookmark();
    expect(bookmark).not.toBeNull();
    await expect(
      session.prepare("UPDATE conversations SET title = 'changed' WHERE id = ?").bind(conversation.id).run(),
    ).rejects.toThrow(UserMovingError);
    const [again] = await session.batch([session.prepare(read).bind(user)]);
    expect(again?.results).toHaveLength(1);

    await runReshard();
    // A bookmark of the old shard's session, sent back after the move, reads the new shard.
    const after = userDb(env, user).withSession(bookmark!);
    const title = await after
      .prepare("SELECT title FROM conversations WHERE id = ?")
      .bind(conversation.id)
      .first("title");
    expect(title).toBe("in a session");
    await after
      .prepare("UPDATE conversations SET title = 'changed' WHERE id = ?")
      .bind(conversation.id)
      .run();
    const onNew = await shards[2]!
      .prepare("SELECT title FROM conversations WHERE id = ?")
      .bind(conversation.id)
      .first();
    expect(onNew).toEqual({ title: "changed" });
  });

  it("ignores a moved user's old-shard bookmark: the read sees the moved data, during and after the reshard", async () => {
    const user = userMoving("bookmark", 1, 2);
    const conversation = await createConversation(user, { title: "before the move" });
    const before = await call(user, "GET", "/conversations");
    expect(before.status).toBe(200);
    const oldBookmark = before.headers.get("x-d1-bookmark")!;
    expect(oldBookmark).toMatch(/^0001~/);

    await runReshard();
    const moved = await shards[2]!
      .prepare("SELECT title FROM conversations WHERE id = ?")
      .bind(conversation.id)
      .first("title");
    expect(moved).toBe("before the move");
    await shards[2]!
      .prepare("UPDATE conversations SET title = 'moved' WHERE id = ?")
      .bind(conversation.id)
      .run();

    // Sent after the move: the session starts at the new shard's primary, which has the moved rows.
    const after = await call(user, "GET", "/conversations", undefined, {
      headers: { "x-d1-bookmark": oldBookmark },
    });
    expect(after.status).toBe(200);
    const listed = (await after.json()) as { data: { id: string; title: string }[] };
    expect(listed.data.map((c) => [c.id, c.title])).toEqual([[conversation.id, "moved"]]);
    // While RESHARD_FROM is set, the user's bookmarks carry the old shard's tag (store/shards.ts
    // `bookmarkShard`), so none of them is a read position once the reshard ends either.
    expect(after.headers.get("x-d1-bookmark")).toMatch(/^0001~/);

    // Once the reshard ends (RESHARD_FROM unset) the user's bookmarks are the new shard's, and an
    // old-shard one is ignored there.
    const ended = { ...env, RESHARD_FROM: "" };
    const now = bookmarkShard(ended, user);
    expect(now).toEqual({ index: 2, count: NEW });
    expect(readBookmark(oldBookmark, now)).toEqual({ ok: true, bookmark: null });
    expect(readBookmark(oldBookmark, bookmarkShard(env, user))).toEqual({
      ok: true,
      bookmark: oldBookmark.slice(5),
    });
  });

  it("moves a user of 1,000 messages (3 KB each) within one step's statement budget", async () => {
    const user = userMoving("large", 1, 2);
    const conversation = await createConversation(user, { title: "long" });
    const old = shards[1]!;
    const text = "a realistic paragraph of an answer with some words in it. ".repeat(50);
    // A conversation of 1,000 messages, each the answer or question after the one before.
    const id = (i: number) => `0190${String(i).padStart(4, "0")}-0000-7000-8000-000000000000`;
    for (let batch = 0; batch < 10; batch++) {
      await old.batch(
        Array.from({ length: 100 }, (_, j) => {
          const i = batch * 100 + j;
          return old
            .prepare(
              `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, content_json, status, created_at)
               VALUES (?, ?, ?, ?, ?, ?, 'completed', ?)`,
            )
            .bind(
              id(i),
              conversation.id,
              user,
              i === 0 ? null : id(i - 1),
              i % 2 ? "assistant" : "user",
              JSON.stringify(`${i} ${text}`),
              Date.now(),
            );
        }),
      );
    }
    const before = await snapshot(old, user);
    expect(before.messages).toHaveLength(1000);
    const steps = await runReshard(1);
    const move = steps.flatMap((s) => s.moved).find((m) => m.user_id === user)!;
    expect(move.rows).toBeGreaterThan(2000);
    expect(await snapshot(shards[2]!, user)).toEqual(before);
    const step = steps.find((s) => s.moved.some((m) => m.user_id === user))!;
    console.log(`moved ${move.rows} rows in ${move.ms} ms with ${step.queries} statements`);
    expect(step.queries).toBeLessThan(600);
  });

  it("undoes a move that does not fit in a step's statements: the user stays whole in the old shard", async () => {
    const user = userMoving("too-large", 0, 2);
    await populate(user);
    const before = await snapshot(shards[0]!, user);
    // A step that has already run 900 of its statements.
    const outcome = await moveUser(
      shards[0]!,
      shards[2]!,
      user,
      { fromCount: OLD, toCount: NEW, targetShard: 2 },
      {
        queries: 900,
      },
    );
    expect(outcome).toMatchObject({ status: "failed", message: expect.stringContaining("statements") });
    expect(await snapshot(shards[0]!, user)).toEqual(before);
    expect(rowCount(await snapshot(shards[2]!, user))).toBe(0);
    const mark = await shards[0]!.prepare("SELECT * FROM shard_moves WHERE user_id = ?").bind(user).first();
    expect(mark).toBeNull();
    await ok(await call(user, "POST", "/conversations", {}), 201);
    await runReshard();
    expect(rowCount(await snapshot(shards[2]!, user))).toBe(rowCount(before) + 2);
  });
});
