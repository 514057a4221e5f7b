import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { SearchHit, SearchPage } from "../src/resources/search";
import { call, createConversation, expectError, newUser } from "./helpers/api";
import type { TurnResult } from "./helpers/api-types";
import { dbOf } from "./helpers/shards";

/** Sends a user message (the stand-in answers with `answer`'s directive) and waits for the answer. */
async function send(userId: string, conversationId: string, text: string, answer = "[[stand-in tokens=2]]") {
  const res = await call(userId, "POST", `/conversations/${conversationId}/messages`, {
    content: `${text} ${answer}`,
    stream: false,
  });
  expect(res.status).toBe(200);
  const turn = (await res.json()) as TurnResult;
  expect(turn.assistant_message?.status).toBe("completed");
  return turn;
}

async function searchPage(userId: string, params: Record<string, string>): Promise<SearchPage> {
  const res = await call(userId, "GET", `/search?${new URLSearchParams(params)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as SearchPage;
}

/** Every hit of a query, page by page. */
async function searchAll(
  userId: string,
  q: string,
  limit = 100,
): Promise<{ hits: SearchHit[]; pages: number }> {
  const hits: SearchHit[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page: SearchPage = await searchPage(userId, {
      q,
      limit: String(limit),
      ...(cursor ? { cursor } : {}),
    });
    hits.push(...page.data);
    cursor = page.next_cursor;
    pages++;
  } while (cursor);
  return { hits, pages };
}

/** The highlighted substrings of a hit. */
const highlighted = (hit: SearchHit) => hit.highlights.map(([s, e]) => hit.snippet.slice(s, e));

describe("GET /v1/search", () => {
  it("finds an English word in user messages and in the answer written at the stream's end", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const turn = await send(alice, conv.id, "The migrating Albatross crossed the ocean", "[[stand-in echo]]");
    await send(alice, conv.id, "Nothing about seabirds here");

    const { hits } = await searchAll(alice, "albatross");
    expect(hits.map((h) => [h.message_id, h.role]).sort()).toEqual(
      [
        [turn.user_message.id, "user"],
        [turn.assistant_message?.id, "assistant"],
      ].sort(),
    );
    for (const hit of hits) {
      expect(hit.conversation_id).toBe(conv.id);
      expect(highlighted(hit).length).toBeGreaterThan(0);
      for (const text of highlighted(hit)) expect(text).toBe("Albatross");
    }
    const user = hits.find((h) => h.role === "user")!;
    expect(user.snippet).toBe("The migrating Albatross crossed the ocean [[stand-in echo]]");
    expect(user.created_at).toBe(turn.user_message.created_at);
  });

  it("finds a two-character Chinese word inside a sentence, and three or more characters through the index", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const hit = await send(alice, conv.id, "🎉 今天天气很好，我们去公园散步吧");
    await send(alice, conv.id, "明天会下雨，记得带伞");

    const two = await searchAll(alice, "天气");
    expect(two.hits.map((h) => h.message_id)).toEqual([hit.user_message.id]);
    expect(highlighted(two.hits[0]!)).toEqual(["天气"]);
    // README's example: 🎉 is 2 code units, and 天天气 holds 天气 once, at its second 天.
    expect(two.hits[0]!.highlights).toEqual([[5, 7]]);

    const three = await searchAll(alice, "去公园");
    expect(three.hits.map((h) => h.message_id)).toEqual([hit.user_message.id]);
    // Two short terms together: both must occur.
    expect((await searchAll(alice, "天气 下雨")).hits).toEqual([]);
    expect((await searchAll(alice, "下雨 带伞")).hits).toHaveLength(1);
    // A short and a long term: the index finds the long one, the short one filters.
    const mixed = await searchAll(alice, "天气 公园散");
    expect(mixed.hits.map((h) => h.message_id)).toEqual([hit.user_message.id]);
    expect(highlighted(mixed.hits[0]!)).toEqual(["天气", "公园散"]);
    // A single character.
    expect((await searchAll(alice, "伞")).hits).toHaveLength(1);
  });

  it("finds a Japanese phrase, and not a text that shares only part of it", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tower = await send(alice, conv.id, "昨日は東京タワーに登りました。景色が最高！");
    const station = await send(alice, conv.id, "東京駅で待ち合わせしましょう");

    const phrase = await searchAll(alice, "東京タワー");
    expect(phrase.hits.map((h) => h.message_id)).toEqual([tower.user_message.id]);
    expect(highlighted(phrase.hits[0]!)).toEqual(["東京タワー"]);

    const city = await searchAll(alice, "東京");
    expect(city.hits.map((h) => h.message_id).sort()).toEqual(
      [tower.user_message.id, station.user_message.id].sort(),
    );
  });

  it("returns only the caller's hits: another user's identical text never appears", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const aliceConv = await createConversation(alice, { title: "Marmalade recipes" });
    const bobConv = await createConversation(bob, { title: "Marmalade recipes" });
    await send(alice, aliceConv.id, "Seville oranges make the best marmalade 天气");
    await send(bob, bobConv.id, "Seville oranges make the best marmalade 天气");
    await send(bob, bobConv.id, "more marmalade 天气 for bob only");

    for (const q of ["marmalade", "天气", "Seville oranges"]) {
      const { hits } = await searchAll(alice, q);
      expect(hits.length).toBeGreaterThan(0);
      expect(new Set(hits.map((h) => h.conversation_id))).toEqual(new Set([aliceConv.id]));
    }
    const bobs = await searchAll(bob, "marmalade");
    expect(bobs.hits.every((h) => h.conversation_id === bobConv.id)).toBe(true);
    expect(bobs.hits).toHaveLength(3);
  });

  it("finds conversation titles, follows a renamed title, and shows the title on message hits", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { title: "Quarterly budget review" });
    await send(alice, conv.id, "Spreadsheet figures for the budget");

    const both = await searchAll(alice, "budget");
    const title = both.hits.find((h) => h.message_id === null);
    expect(title).toMatchObject({
      conversation_id: conv.id,
      conversation_title: "Quarterly budget review",
      role: null,
      snippet: "Quarterly budget review",
      highlights: [[10, 16]],
      created_at: conv.created_at,
    });
    expect(both.hits.find((h) => h.role === "user")?.conversation_title).toBe("Quarterly budget review");

    const renamed = await call(alice, "PATCH", `/conversations/${conv.id}`, { title: "Annual forecast" });
    expect(renamed.status).toBe(200);
    expect((await searchAll(alice, "quarterly")).hits).toEqual([]);
    const forecast = await searchAll(alice, "forecast");
    expect(forecast.hits.map((h) => [h.message_id, h.conversation_title])).toEqual([
      [null, "Annual forecast"],
    ]);

    await call(alice, "PATCH", `/conversations/${conv.id}`, { title: null });
    expect((await searchAll(alice, "forecast")).hits).toEqual([]);
  });

  it("never shows a deleted conversation, and its index rows go in the same transaction", async () => {
    const alice = newUser("alice");
    const kept = await createConversation(alice, { title: "kept pelican notes" });
    const gone = await createConversation(alice, { title: "gone pelican notes" });
    await send(alice, kept.id, "a pelican 鹈鹕 in the harbour");
    await send(alice, gone.id, "a pelican 鹈鹕 on the pier", "[[stand-in echo]]");
    expect(
      (await searchAll(alice, "pelican")).hits.filter((h) => h.conversation_id === gone.id),
    ).toHaveLength(3);

    expect((await call(alice, "DELETE", `/conversations/${gone.id}`)).status).toBe(204);
    for (const q of ["pelican", "鹈鹕", "pier"]) {
      const { hits } = await searchAll(alice, q);
      expect(hits.some((h) => h.conversation_id === gone.id)).toBe(false);
    }
    expect((await searchAll(alice, "pelican")).hits.length).toBe(2);
    const left = await dbOf(alice)
      .prepare(
        "SELECT count(*) AS n FROM search_docs WHERE conversation_id = ? UNION ALL SELECT count(*) FROM search_text WHERE body LIKE '%on the pier%'",
      )
      .bind(gone.id)
      .all<{ n: number }>();
    expect(left.results.map((r) => r.n)).toEqual([0, 0]);
  });

  it("finds nothing of a deleted account, and leaves none of its texts in the index", async () => {
    const carol = newUser("carol");
    const conv = await createConversation(carol, { title: "cassowary diary" });
    await send(carol, conv.id, "a cassowary 鹤鸵 crossed the road", "[[stand-in echo]]");
    expect((await searchAll(carol, "cassowary")).hits).toHaveLength(3);

    expect((await call(carol, "DELETE", "/account")).status).toBe(202);
    expect((await searchAll(carol, "cassowary")).hits).toEqual([]);
    expect((await searchAll(carol, "鹤鸵")).hits).toEqual([]);
    const left = await dbOf(carol)
      .prepare("SELECT count(*) AS n FROM search_docs WHERE user_id = ?")
      .bind(carol)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("a cascade from conversations fires the messages' delete trigger in D1", async () => {
    // The conversation's own trigger also removes its texts; this shows the message trigger
    // alone would, for a message deleted with its conversation (ON DELETE CASCADE).
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const turn = await send(alice, conv.id, "cascade check flamingo");
    const probe = `probe_${crypto.randomUUID().replace(/-/g, "")}`;
    await dbOf(alice).batch([
      dbOf(alice).prepare(`CREATE TABLE ${probe} (id TEXT)`),
      dbOf(alice).prepare(
        `CREATE TRIGGER ${probe}_t AFTER DELETE ON messages WHEN OLD.conversation_id = '${conv.id}' BEGIN INSERT INTO ${probe} VALUES (OLD.id); END`,
      ),
    ]);
    try {
      expect((await call(alice, "DELETE", `/conversations/${conv.id}`)).status).toBe(204);
      const { results } = await dbOf(alice)
        .prepare(`SELECT id FROM ${probe} ORDER BY id`)
        .all<{ id: string }>();
      expect(results.map((r) => r.id)).toEqual([turn.user_message.id, turn.assistant_message!.id].sort());
    } finally {
      await dbOf(alice).batch([
        dbOf(alice).prepare(`DROP TRIGGER ${probe}_t`),
        dbOf(alice).prepare(`DROP TABLE ${probe}`),
      ]);
    }
  });

  it("pages by score then recency without duplicates or gaps", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const sent: string[] = [];
    // Scores repeat (the same text) and differ (more occurrences, longer texts).
    const texts = [
      "kiwi",
      "kiwi kiwi kiwi",
      "kiwi",
      "a long sentence that mentions kiwi only once among many other words about fruit and orchards",
      "kiwi kiwi",
      "kiwi",
      "奇异果 kiwi",
      "kiwi",
      "kiwi kiwi kiwi",
      "kiwi",
      "kiwi",
    ];
    for (const text of texts) sent.push((await send(alice, conv.id, text)).user_message.id);

    const whole = await searchPage(alice, { q: "kiwi", limit: "100" });
    expect(whole.next_cursor).toBeNull();
    expect(whole.data.map((h) => h.message_id).sort()).toEqual([...sent].sort());
    for (const limit of [1, 3, 4]) {
      const { hits, pages } = await searchAll(alice, "kiwi", limit);
      expect(hits.map((h) => h.message_id)).toEqual(whole.data.map((h) => h.message_id));
      expect(pages).toBe(Math.ceil(texts.length / limit));
    }
    // Best first: more occurrences in a short text rank above one in a long text; equal texts newest first.
    const order = whole.data.map((h) => h.message_id!);
    expect(order.indexOf(sent[1]!)).toBeLessThan(order.indexOf(sent[0]!));
    expect(order.indexOf(sent[0]!)).toBeLessThan(order.indexOf(sent[3]!));
    expect(order.indexOf(sent[10]!)).toBeLessThan(order.indexOf(sent[9]!));
    expect(order.indexOf(sent[9]!)).toBeLessThan(order.indexOf(sent[0]!));
    // A page's cursor goes on where the page ended, also on the short-term scan.
    const cjk = await searchAll(alice, "奇异", 1);
    expect(cjk.hits.map((h) => h.message_id)).toEqual([sent[6]]);
  });

  it("gives highlight offsets in UTF-16 code units, after emoji and other astral characters", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const text = "🎉👍🏽 𝒳 Hello there, hello again: 天气 and 🌧️天气";
    const turn = await send(alice, conv.id, text);

    const [hit] = (await searchAll(alice, "HELLO")).hits;
    expect(hit?.message_id).toBe(turn.user_message.id);
    const first = text.indexOf("Hello");
    expect(first).toBe(10); // 🎉 2 + 👍🏽 4 + space + 𝒳 2 + space
    expect(hit!.highlights).toEqual([
      [first, first + 5],
      [text.indexOf("hello"), text.indexOf("hello") + 5],
    ]);
    expect(highlighted(hit!)).toEqual(["Hello", "hello"]);

    const [cjk] = (await searchAll(alice, "天气")).hits;
    expect(highlighted(cjk!)).toEqual(["天气", "天气"]);
    expect(cjk!.highlights[1]![0]).toBe(text.lastIndexOf("天气"));

    // A long text is cut around the first match, and the offsets count the leading "…".
    const long = `${"🐙".repeat(150)} the needle is here ${"🦑".repeat(150)}`;
    await send(alice, conv.id, long);
    const [cut] = (await searchAll(alice, "needle")).hits;
    expect(cut!.snippet.startsWith("…")).toBe(true);
    expect(cut!.snippet.endsWith("…")).toBe(true);
    expect(cut!.snippet.length).toBeLessThanOrEqual(204);
    expect(highlighted(cut!)).toEqual(["needle"]);
    // No emoji is split at the cuts: the snippet is well-formed.
    expect(cut!.snippet.isWellFormed()).toBe(true);
    expect(long.includes(cut!.snippet.slice(1, -1))).toBe(true);
  });

  it("indexes the text parts of content arrays, not reasoning", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: [
        { type: "text", text: "first part about narwhals" },
        { type: "text", text: "second part about walruses [[stand-in tokens=2 thinking reasoning=3]]" },
      ],
      stream: false,
    });
    expect(res.status).toBe(200);
    const turn = (await res.json()) as TurnResult;
    const [narwhal] = (await searchAll(alice, "narwhals")).hits;
    expect(narwhal?.message_id).toBe(turn.user_message.id);
    expect((await searchAll(alice, "walruses")).hits.map((h) => h.message_id)).toEqual([
      turn.user_message.id,
    ]);
    // The answer's indexed text is its content: the reasoning is left out.
    const answer = turn.assistant_message!;
    expect(answer.reasoning_content?.length).toBeGreaterThan(0);
    expect(typeof answer.content).toBe("string");
    const indexed = await dbOf(alice)
      .prepare("SELECT t.body FROM search_docs d JOIN search_text t ON t.rowid = d.doc_id WHERE d.ref_id = ?")
      .bind(answer.id)
      .first<{ body: string }>();
    expect(indexed?.body).toBe(answer.content);
  });

  it("the migration indexes the rows stored before it, once", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { title: "Older ptarmigan trip" });
    await send(alice, conv.id, "we saw a ptarmigan 雷鸟 on the ridge", "[[stand-in echo]]");
    const before = await searchAll(alice, "ptarmigan");
    expect(before.hits).toHaveLength(3);
    // As if these rows had been stored before migration 0007: not in the index.
    await dbOf(alice).batch([
      dbOf(alice)
        .prepare("DELETE FROM search_text WHERE rowid IN (SELECT doc_id FROM search_docs WHERE user_id = ?)")
        .bind(alice),
      dbOf(alice).prepare("DELETE FROM search_docs WHERE user_id = ?").bind(alice),
    ]);
    expect((await searchAll(alice, "ptarmigan")).hits).toEqual([]);

    // The migration's own statements that index what is stored.
    const migration = env.TEST_MIGRATIONS.find((m) => m.name.startsWith("0007_"));
    const backfill = (migration?.queries ?? []).filter((q) => /^\s*(--[^\n]*\n\s*)*INSERT\b/.test(q));
    expect(backfill).toHaveLength(3);
    const run = () => dbOf(alice).batch(backfill.map((q) => dbOf(alice).prepare(q)));
    await run();
    await run();

    const after = await searchAll(alice, "ptarmigan");
    expect(after.hits).toEqual(before.hits);
    expect((await searchAll(alice, "雷鸟")).hits).toHaveLength(2);
    const counts = await dbOf(alice)
      .prepare(
        "SELECT (SELECT count(*) FROM search_docs) AS docs, (SELECT count(*) FROM search_text) AS texts",
      )
      .first<{ docs: number; texts: number }>();
    expect(counts?.texts).toBe(counts?.docs);
  });

  it("answers hostile queries with 200 or 400, never 500, and validates q, limit and cursor", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { title: 'quote " star * colon : dash - NEAR( paren' });
    await send(alice, conv.id, 'a "quoted" word, a * star, NEAR(x y), -minus, col:on and ^caret');
    const hostile = [
      '"',
      "*",
      "NEAR(",
      "-",
      ":",
      '"quoted',
      "NEAR(x y)",
      "a OR b",
      "col:on",
      "^caret",
      "(((",
      "AND",
      "NOT",
      "x*",
      '""',
      "'",
      "\\",
      "%",
      "_",
      "\u0000abc",
      "a\u0000",
      "🎉",
      "🎉🎉🎉",
      "e\u0301",
      '"""',
      "'; DROP TABLE messages; --",
      "   padded   ",
    ];
    for (const q of hostile) {
      const res = await call(alice, "GET", `/search?q=${encodeURIComponent(q)}`);
      expect([200, 400], q).toContain(res.status);
      const body = (await res.json()) as SearchPage;
      if (res.status === 200) for (const hit of body.data) expect(hit.conversation_id).toBe(conv.id);
    }
    // Literal matches of syntax characters.
    expect((await searchAll(alice, "NEAR(")).hits.length).toBe(2);
    expect((await searchAll(alice, "col:on")).hits.map((h) => h.role)).toEqual(["user"]);
    expect((await searchAll(alice, "*")).hits.length).toBe(2);
    // "…" groups a phrase with a space.
    expect((await searchAll(alice, '"a * star"')).hits.length).toBe(1);
    // A LIKE wildcard is not one.
    expect((await searchAll(alice, "%")).hits).toEqual([]);

    await expectError(await call(alice, "GET", "/search"), 400, "invalid_request", "q");
    await expectError(await call(alice, "GET", "/search?q="), 400, "invalid_request", "q");
    await expectError(await call(alice, "GET", "/search?q=abc%00def"), 400, "invalid_request", "q");
    expect((await call(alice, "GET", "/search?q=star%09colon%0Adash")).status).toBe(200);
    await expectError(await call(alice, "GET", "/search?q=%20%20%09"), 400, "invalid_request", "q");
    await expectError(await call(alice, "GET", `/search?q=${"x".repeat(257)}`), 400, "invalid_request", "q");
    expect((await call(alice, "GET", `/search?q=${"x".repeat(256)}`)).status).toBe(200);
    const manyTerms = Array.from({ length: 17 }, (_, i) => `t${i}`).join(" ");
    await expectError(
      await call(alice, "GET", `/search?q=${encodeURIComponent(manyTerms)}`),
      400,
      "invalid_request",
      "q",
    );
    // The most terms, all short (the statement with the most bound values: D1 allows 100), with a cursor.
    const sixteen = Array.from(
      { length: 16 },
      (_, i) => `${String.fromCharCode(97 + i)}${i % 2 ? "é" : "x"}`,
    ).join(" ");
    const cursor = btoa(JSON.stringify({ k: "q", s: 1.5, i: conv.id })).replace(/=+$/, "");
    expect(
      (await call(alice, "GET", `/search?q=${encodeURIComponent(sixteen)}&cursor=${cursor}`)).status,
    ).toBe(200);
    const longTerms = sixteen.replace(/ /g, "z ");
    expect(
      (await call(alice, "GET", `/search?q=${encodeURIComponent(longTerms)}&cursor=${cursor}`)).status,
    ).toBe(200);
    await expectError(await call(alice, "GET", "/search?q=kiwi&limit=0"), 400, "invalid_request", "limit");
    await expectError(await call(alice, "GET", "/search?q=kiwi&limit=101"), 400, "invalid_request", "limit");
    await expectError(
      await call(alice, "GET", "/search?q=kiwi&cursor=nope"),
      400,
      "invalid_request",
      "cursor",
    );
    // Another list's cursor is not a search cursor.
    const other = btoa(JSON.stringify({ k: "m", i: conv.id })).replace(/=+$/, "");
    await expectError(
      await call(alice, "GET", `/search?q=kiwi&cursor=${other}`),
      400,
      "invalid_request",
      "cursor",
    );
    // Malformed percent-encoding.
    expect([200, 400]).toContain((await call(alice, "GET", "/search?q=%FF%FE")).status);
  });

  it("needs authentication", async () => {
    const res = await exports.default.fetch("http://localhost/v1/search?q=anything");
    expect(res.status).toBe(401);
  });
});
