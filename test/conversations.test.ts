import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { newId } from "../src/store/ids";
import type { Conversation, Message } from "../src/store/types";
import { BASE, call, createConversation, expectError, newUser } from "./helpers/api";
import { dbOf } from "./helpers/shards";

/** A user id of its own for each test, so tests sharing the local D1 cannot see each other's rows. */
const user = newUser;
const create = createConversation;

async function listAll(userId: string, query = "", limit = 100): Promise<Conversation[]> {
  const out: Conversation[] = [];
  let cursor: string | null = null;
  do {
    const q = new URLSearchParams(query);
    q.set("limit", String(limit));
    if (cursor) q.set("cursor", cursor);
    const res = await call(userId, "GET", `/conversations?${q}`);
    expect(res.status).toBe(200);
    const page = (await res.json()) as { data: Conversation[]; next_cursor: string | null };
    out.push(...page.data);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

async function countConversations(userId: string): Promise<number> {
  const row = await dbOf(userId)
    .prepare("SELECT COUNT(*) AS n FROM conversations WHERE user_id = ?")
    .bind(userId)
    .first<{ n: number }>();
  return row!.n;
}

/** Inserts messages straight into D1 (test setup); returns their ids in creation order. */
async function seedMessages(userId: string, conversationId: string, count: number): Promise<string[]> {
  const ids = Array.from({ length: count }, () => newId());
  const base = Date.now();
  await dbOf(userId).batch(
    ids.map((id, i) =>
      dbOf(userId)
        .prepare(
          `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, content_json, status, created_at,
           prompt_tokens, completion_tokens, total_tokens)
         VALUES (?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?, ?)`,
        )
        .bind(
          id,
          conversationId,
          userId,
          // One path, as turns store it: each message follows the one before.
          i === 0 ? null : ids[i - 1]!,
          i % 2 === 0 ? "user" : "assistant",
          JSON.stringify(`message ${i}`),
          base + i,
          i % 2 === 0 ? null : 10 + i,
          i % 2 === 0 ? null : 5,
          i % 2 === 0 ? null : 15 + i,
        ),
    ),
  );
  return ids;
}

describe("conversation lifecycle", () => {
  it("creates, reads, updates, lists and deletes a conversation", async () => {
    const alice = user("alice");
    const created = await create(alice, {
      title: "Trip plans",
      system_prompt: "Be brief.",
      model: "qwen-plus",
      parameters: { temperature: 0.7, enable_thinking: false },
    });
    expect(created).toMatchObject({
      title: "Trip plans",
      system_prompt: "Be brief.",
      model: "qwen-plus",
      parameters: { temperature: 0.7, enable_thinking: false },
      archived: false,
      last_message_at: null,
    });
    expect(created.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    // ISO 8601 UTC in whole seconds (API.md §2.5; test/timestamps.test.ts checks every resource).
    expect(created.created_at).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/);
    expect(`${new Date(created.created_at).toISOString().slice(0, 19)}Z`).toBe(created.created_at);
    expect(created.updated_at).toBe(created.created_at);

    const got = await call(alice, "GET", `/conversations/${created.id}`);
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(created);

    const patched = await call(alice, "PATCH", `/conversations/${created.id}`, {
      title: null,
      model: "qwen-max",
      parameters: { top_p: 0.5 },
    });
    expect(patched.status).toBe(200);
    const updated = (await patched.json()) as Conversation;
    expect(updated).toMatchObject({
      id: created.id,
      title: null,
      system_prompt: "Be brief.",
      model: "qwen-max",
      parameters: { top_p: 0.5 },
      created_at: created.created_at,
    });
    expect(updated.updated_at >= created.updated_at).toBe(true);

    expect((await listAll(alice)).map((c) => c.id)).toEqual([created.id]);

    const del = await call(alice, "DELETE", `/conversations/${created.id}`);
    expect(del.status).toBe(204);
    expect(await del.text()).toBe("");
    await expectError(await call(alice, "GET", `/conversations/${created.id}`), 404, "not_found");
    await expectError(await call(alice, "DELETE", `/conversations/${created.id}`), 404, "not_found");
    expect(await listAll(alice)).toEqual([]);
  });

  it("creates with defaults from an empty body and stores the user once", async () => {
    const alice = user("alice");
    const a = await create(alice);
    expect(a).toMatchObject({
      title: null,
      system_prompt: null,
      model: null,
      parameters: {},
      archived: false,
    });
    await create(alice, { title: "second" });
    const users = await dbOf(alice)
      .prepare("SELECT COUNT(*) AS n FROM users WHERE id = ?")
      .bind(alice)
      .first<{ n: number }>();
    expect(users!.n).toBe(1);
  });

  it("PATCH clears system_prompt and model with null and replaces parameters wholesale", async () => {
    const alice = user("alice");
    const c = await create(alice, {
      system_prompt: "x",
      model: "qwen-plus",
      parameters: { temperature: 1, top_p: 0.9 },
    });
    const res = await call(alice, "PATCH", `/conversations/${c.id}`, {
      system_prompt: null,
      model: null,
      parameters: { seed: 7 },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ system_prompt: null, model: null, parameters: { seed: 7 } });
    const cleared = await call(alice, "PATCH", `/conversations/${c.id}`, { parameters: null });
    expect(await cleared.json()).toMatchObject({ parameters: {} });
  });
});

describe("archiving", () => {
  it("archives and unarchives, and the list filters on it", async () => {
    const alice = user("alice");
    const kept = await create(alice, { title: "kept" });
    const old = await create(alice, { title: "old" });

    const archived = await call(alice, "PATCH", `/conversations/${old.id}`, { archived: true });
    expect(archived.status).toBe(200);
    expect(await archived.json()).toMatchObject({ id: old.id, archived: true, title: "old" });

    const archivedAt = async () =>
      (await dbOf(alice)
        .prepare("SELECT archived_at FROM conversations WHERE id = ?")
        .bind(old.id)
        .first<{ archived_at: number }>())!.archived_at;
    const firstArchivedAt = await archivedAt();
    expect(firstArchivedAt).toEqual(expect.any(Number));
    await new Promise((r) => setTimeout(r, 5));
    expect((await call(alice, "PATCH", `/conversations/${old.id}`, { archived: true })).status).toBe(200);
    expect(await archivedAt()).toBe(firstArchivedAt);

    expect((await listAll(alice)).map((c) => c.id)).toEqual([kept.id]);
    expect((await listAll(alice, "archived=false")).map((c) => c.id)).toEqual([kept.id]);
    expect((await listAll(alice, "archived=true")).map((c) => c.id)).toEqual([old.id]);
    expect((await listAll(alice, "archived=all")).map((c) => c.id).sort()).toEqual([kept.id, old.id].sort());
    await expectError(
      await call(alice, "GET", "/conversations?archived=yes"),
      400,
      "invalid_request",
      "archived",
    );
    await expectError(
      await call(alice, "GET", "/conversations?archived=constructor"),
      400,
      "invalid_request",
      "archived",
    );

    const restored = await call(alice, "PATCH", `/conversations/${old.id}`, { archived: false });
    expect(await restored.json()).toMatchObject({ archived: false });
    expect((await listAll(alice)).map((c) => c.id).sort()).toEqual([kept.id, old.id].sort());
    expect(await listAll(alice, "archived=true")).toEqual([]);
  });
});

describe("conversation list pagination", () => {
  it("pages newest-updated first with no duplicates or misses while conversations change", async () => {
    const alice = user("alice");
    const total = 23;
    const made: Conversation[] = [];
    for (let i = 0; i < total; i++) made.push(await create(alice, { title: `c${i}` }));

    // Initial order: newest updated first, ties broken by id (newest first).
    const all = await listAll(alice, "", 100);
    expect(all.map((c) => c.id)).toEqual(made.map((c) => c.id).reverse());
    for (let i = 1; i < all.length; i++) expect(all[i - 1]!.updated_at >= all[i]!.updated_at).toBe(true);

    const seen: string[] = [];
    const touched = new Set<string>();
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call(alice, "GET", `/conversations?limit=5${cursor ? `&cursor=${cursor}` : ""}`);
      expect(res.status).toBe(200);
      const page = (await res.json()) as { data: Conversation[]; next_cursor: string | null };
      expect(page.data.length).toBeLessThanOrEqual(5);
      seen.push(...page.data.map((c) => c.id));
      cursor = page.next_cursor;
      pages += 1;
      // Changes between pages that would make OFFSET paging repeat a row (a bump of an unseen
      // conversation to the front) and skip a row (a delete of a seen one); keyset paging is immune.
      if (pages === 1) {
        const unseen = made[2]!.id;
        touched.add(unseen);
        expect((await call(alice, "PATCH", `/conversations/${unseen}`, { title: "bumped" })).status).toBe(
          200,
        );
      }
      if (pages === 2) {
        const gone = page.data[0]!.id;
        touched.add(gone);
        expect((await call(alice, "DELETE", `/conversations/${gone}`)).status).toBe(204);
      }
    } while (cursor);

    expect(pages).toBe(5);
    expect(new Set(seen).size).toBe(seen.length);
    for (const c of made) {
      if (!touched.has(c.id)) expect(seen).toContain(c.id);
    }
    // The bumped conversation now leads the list.
    expect((await listAll(alice, "", 3))[0]!.id).toBe(made[2]!.id);
  });

  it("returns next_cursor null on the last page and an exact final page", async () => {
    const alice = user("alice");
    for (let i = 0; i < 4; i++) await create(alice);
    const first = (await (await call(alice, "GET", "/conversations?limit=2")).json()) as {
      data: Conversation[];
      next_cursor: string | null;
    };
    expect(first.data).toHaveLength(2);
    expect(first.next_cursor).toEqual(expect.any(String));
    const second = (await (
      await call(alice, "GET", `/conversations?limit=2&cursor=${first.next_cursor}`)
    ).json()) as {
      data: Conversation[];
      next_cursor: string | null;
    };
    expect(second.data).toHaveLength(2);
    expect(second.next_cursor).toBeNull();
  });

  it("defaults to 20 and enforces limit bounds", async () => {
    const alice = user("alice");
    for (let i = 0; i < 21; i++) await create(alice);
    const page = (await (await call(alice, "GET", "/conversations")).json()) as {
      data: unknown[];
      next_cursor: string;
    };
    expect(page.data).toHaveLength(20);
    expect(page.next_cursor).toEqual(expect.any(String));
    expect((await call(alice, "GET", "/conversations?limit=1")).status).toBe(200);
    expect((await call(alice, "GET", "/conversations?limit=100")).status).toBe(200);
    for (const bad of ["0", "101", "-1", "2.5", "abc", "1e2"]) {
      await expectError(
        await call(alice, "GET", `/conversations?limit=${bad}`),
        400,
        "invalid_request",
        "limit",
      );
    }
  });

  it("rejects malformed cursors and cursors of another list", async () => {
    const alice = user("alice");
    const c = await create(alice);
    const [messageId] = await seedMessages(alice, c.id, 3);
    const messages = (await (await call(alice, "GET", `/conversations/${c.id}/messages?limit=1`)).json()) as {
      next_cursor: string;
    };
    const forged = btoa(JSON.stringify({ k: "c", u: "soon", i: messageId })).replace(/=+$/, "");
    for (const bad of ["%%%", "bm90IGpzb24", "e30", forged, messages.next_cursor]) {
      await expectError(
        await call(alice, "GET", `/conversations?cursor=${encodeURIComponent(bad)}`),
        400,
        "invalid_request",
        "cursor",
      );
    }
  });
});

describe("request validation", () => {
  it("rejects invalid bodies with the field at fault and stores nothing", async () => {
    const alice = user("alice");
    const cases: [unknown, string | undefined][] = [
      [{ title: "x".repeat(201) }, "title"],
      [{ title: 5 }, "title"],
      [{ system_prompt: "x".repeat(100_001) }, "system_prompt"],
      [{ model: "qwen plus" }, "model"],
      [{ model: "" }, "model"],
      [{ model: "m".repeat(101) }, "model"],
      [{ colour: "blue" }, "colour"],
      [{ parameters: "hot" }, "parameters"],
      [[], undefined],
    ];
    for (const [body, param] of cases) {
      const error = await expectError(
        await call(alice, "POST", "/conversations", body),
        400,
        "invalid_request",
      );
      expect(error.param).toBe(param);
    }
    await expectError(await call(alice, "POST", "/conversations", "{not json"), 400, "invalid_request");
    expect(await countConversations(alice)).toBe(0);
    // Edges that are allowed.
    await create(alice, { title: "x".repeat(200), model: "qwen2.5-vl-72b_instruct.v1" });
    expect(await countConversations(alice)).toBe(1);
  });

  it("rejects invalid generation parameters naming the parameter", async () => {
    const alice = user("alice");
    await expectError(
      await call(alice, "POST", "/conversations", { parameters: { temperature: 2 } }),
      400,
      "invalid_request",
      "parameters.temperature",
    );
    await expectError(
      await call(alice, "POST", "/conversations", { parameters: { foo: 1 } }),
      400,
      "invalid_request",
      "parameters.foo",
    );
    expect(await countConversations(alice)).toBe(0);
  });

  it("rejects invalid patches and leaves the conversation unchanged", async () => {
    const alice = user("alice");
    const c = await create(alice, { title: "same", parameters: { temperature: 0.3 } });
    const cases: [unknown, string | undefined][] = [
      [{}, undefined],
      [{ archived: "yes" }, "archived"],
      [{ title: "x".repeat(201) }, "title"],
      [{ model: "a/b" }, "model"],
      [{ id: newId() }, "id"],
      [{ title: "new", parameters: { top_p: 0 } }, "parameters.top_p"],
    ];
    for (const [body, param] of cases) {
      const error = await expectError(
        await call(alice, "PATCH", `/conversations/${c.id}`, body),
        400,
        "invalid_request",
      );
      expect(error.param).toBe(param);
    }
    const now = (await (await call(alice, "GET", `/conversations/${c.id}`)).json()) as Conversation;
    expect(now).toEqual(c);
  });
});

describe("messages", () => {
  it("lists a conversation's messages newest first across pages", async () => {
    const alice = user("alice");
    const c = await create(alice);
    const ids = await seedMessages(alice, c.id, 7);
    const seen: Message[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call(
        alice,
        "GET",
        `/conversations/${c.id}/messages?limit=3${cursor ? `&cursor=${cursor}` : ""}`,
      );
      expect(res.status).toBe(200);
      const page = (await res.json()) as { data: Message[]; next_cursor: string | null };
      seen.push(...page.data);
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen.map((m) => m.id)).toEqual([...ids].reverse());

    const newestAssistant = seen.find((m) => m.id === ids[5])!;
    expect(newestAssistant).toMatchObject({
      conversation_id: c.id,
      role: "assistant",
      content: "message 5",
      status: "completed",
      tool_calls: null,
      error: null,
      usage: {
        prompt_tokens: 15,
        completion_tokens: 5,
        total_tokens: 20,
        cached_tokens: 0,
        reasoning_tokens: 0,
      },
      completed_at: null,
    });
    expect(seen.find((m) => m.id === ids[6])!.usage).toBeNull();

    const empty = await create(alice);
    const none = await call(alice, "GET", `/conversations/${empty.id}/messages`);
    expect(await none.json()).toEqual({ data: [], next_cursor: null });
    await expectError(
      await call(alice, "GET", `/conversations/${c.id}/messages?limit=101`),
      400,
      "invalid_request",
      "limit",
    );
    await expectError(
      await call(alice, "GET", `/conversations/${c.id}/messages?cursor=nope!`),
      400,
      "invalid_request",
      "cursor",
    );
  });

  it("deleting a conversation deletes its messages (ON DELETE CASCADE)", async () => {
    const alice = user("alice");
    const doomed = await create(alice);
    const other = await create(alice);
    await seedMessages(alice, doomed.id, 4);
    await seedMessages(alice, other.id, 2);
    const count = async (id: string) =>
      (await dbOf(alice)
        .prepare("SELECT COUNT(*) AS n FROM messages WHERE conversation_id = ?")
        .bind(id)
        .first<{ n: number }>())!.n;
    expect(await count(doomed.id)).toBe(4);
    expect((await call(alice, "DELETE", `/conversations/${doomed.id}`)).status).toBe(204);
    expect(await count(doomed.id)).toBe(0);
    expect(await count(other.id)).toBe(2);
  });
});

describe("cross-user isolation", () => {
  it("answers 404 for another user's conversation on every route and changes nothing", async () => {
    const alice = user("alice");
    const bob = user("bob");
    const theirs = await create(alice, { title: "private" });
    await seedMessages(alice, theirs.id, 2);
    await create(bob, { title: "bob's" });

    await expectError(await call(bob, "GET", `/conversations/${theirs.id}`), 404, "not_found");
    await expectError(
      await call(bob, "PATCH", `/conversations/${theirs.id}`, { title: "mine" }),
      404,
      "not_found",
    );
    await expectError(
      await call(bob, "PATCH", `/conversations/${theirs.id}`, { archived: true }),
      404,
      "not_found",
    );
    await expectError(await call(bob, "DELETE", `/conversations/${theirs.id}`), 404, "not_found");
    await expectError(await call(bob, "GET", `/conversations/${theirs.id}/messages`), 404, "not_found");
    for (const q of ["", "archived=true", "archived=all"]) {
      const ids = (await listAll(bob, q)).map((c) => c.id);
      expect(ids).not.toContain(theirs.id);
    }
    expect((await listAll(bob)).map((c) => c.title)).toEqual(["bob's"]);

    // Alice's conversation and messages are untouched.
    const still = (await (await call(alice, "GET", `/conversations/${theirs.id}`)).json()) as Conversation;
    expect(still).toEqual(theirs);
    const msgs = (await (await call(alice, "GET", `/conversations/${theirs.id}/messages`)).json()) as {
      data: unknown[];
    };
    expect(msgs.data).toHaveLength(2);
  });

  it("answers 404 for malformed ids", async () => {
    const alice = user("alice");
    for (const bad of ["nope", "00000000-0000-4000-8000-000000000000", "x".repeat(300)]) {
      await expectError(await call(alice, "GET", `/conversations/${bad}`), 404, "not_found");
      await expectError(
        await call(alice, "PATCH", `/conversations/${bad}`, { title: "t" }),
        404,
        "not_found",
      );
      await expectError(await call(alice, "DELETE", `/conversations/${bad}`), 404, "not_found");
      await expectError(await call(alice, "GET", `/conversations/${bad}/messages`), 404, "not_found");
    }
  });

  it("requires authentication", async () => {
    const res = await exports.default.fetch(`${BASE}/conversations`);
    expect(res.status).toBe(401);
  });
});
