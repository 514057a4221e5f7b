import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { readBookmark } from "../src/store/sessions";
import { shardDatabases, shardIndex } from "../src/store/shards";
import type { Conversation } from "../src/store/types";
import {
  call,
  endMessage,
  expectError,
  newTag,
  newUser,
  openTurn,
  readSse,
  startedData,
} from "./helpers/api";
import type { ApiMessage, TurnResult } from "./helpers/api-types";
import { rowsOnAllShards, userOnShard } from "./helpers/shards";

/**
 * The bookmark this API hands out (store/sessions.ts `tagBookmark`): the binding index of its shard
 * in 4 digits, `~`, and D1's bookmark (local D1 writes it the same way as Cloudflare's).
 */
const BOOKMARK = /^[0-9]{4}~[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{32}$/;

/** The response's bookmark, asserted present and well-formed (and, given a user, of their shard). */
function bookmarkOf(res: Response, user?: string): string {
  const bookmark = res.headers.get("x-d1-bookmark");
  expect(bookmark, `${res.status} ${res.url}`).toMatch(BOOKMARK);
  if (user !== undefined) expect(shardTag(bookmark!)).toBe(shardIndex(user, shardDatabases(env).length));
  return bookmark!;
}

/** The D1 bookmark and the shard tag of a bookmark this API handed out. */
const d1Part = (bookmark: string) => bookmark.slice(5);
const shardTag = (bookmark: string) => Number(bookmark.slice(0, 4));
const tagged = (shard: number, d1: string) => `${String(shard).padStart(4, "0")}~${d1}`;

/**
 * A D1 bookmark later than any the test databases reach. Local D1 (miniflare 4) opens a session
 * at any bookmark without waiting and keeps the lexically greatest bookmark it has seen, so a
 * response carrying this one shows that the request's session was opened at it.
 */
const FUTURE = "ffffffff-ffffffff-ffffffff-ffffffffffffffffffffffffffffffff";

/**
 * Asserts `later` is at least as new as `earlier`. Bookmarks of one database compare lexically
 * (local D1 counts every query, so a read after a write is strictly greater; on Cloudflare a read
 * on a replica that saw nothing newer returns the same one).
 */
function expectAtLeast(later: string, earlier: string) {
  expect(later >= earlier, `${later} >= ${earlier}`).toBe(true);
}

const withBookmark = (bookmark: string) => ({ headers: { "x-d1-bookmark": bookmark } });

describe("x-d1-bookmark", () => {
  it("is on reads and on the route's own writes, and a write's bookmark sent back reads that write", async () => {
    const alice = newUser("bm-routes");
    const list = await call(alice, "GET", "/conversations");
    expect(list.status).toBe(200);
    bookmarkOf(list);

    const key = await call(alice, "POST", "/api-keys", { name: "laptop" });
    expect(key.status).toBe(201);
    const written = bookmarkOf(key);
    const { id } = (await key.json()) as { id: string };
    const keys = await call(alice, "GET", "/api-keys", undefined, withBookmark(written));
    expect(keys.status).toBe(200);
    expect(((await keys.json()) as { data: { id: string }[] }).data.map((k) => k.id)).toContain(id);
    expectAtLeast(bookmarkOf(keys), written);

    // An error after a read carries one too.
    const missing = await call(
      alice,
      "GET",
      "/conversations/01JZZZZZZZZZZZZZZZZZZZZZZZ",
      undefined,
      withBookmark(written),
    );
    expect(missing.status).toBe(404);
    expectAtLeast(bookmarkOf(missing), written);
  });

  it("reports the writes of the conversation's object: create, patch and delete", async () => {
    const alice = newUser("bm-object");
    const created = await call(alice, "POST", "/conversations", { title: "first" });
    expect(created.status).toBe(201);
    const afterCreate = bookmarkOf(created);
    const conversation = (await created.json()) as Conversation;

    const read = await call(
      alice,
      "GET",
      `/conversations/${conversation.id}`,
      undefined,
      withBookmark(afterCreate),
    );
    expect(read.status).toBe(200);
    expect(((await read.json()) as Conversation).title).toBe("first");
    expectAtLeast(bookmarkOf(read), afterCreate);

    const patched = await call(alice, "PATCH", `/conversations/${conversation.id}`, { title: "second" });
    expect(patched.status).toBe(200);
    const afterPatch = bookmarkOf(patched);
    expect(afterPatch > afterCreate).toBe(true);
    const reread = await call(
      alice,
      "GET",
      `/conversations/${conversation.id}`,
      undefined,
      withBookmark(afterPatch),
    );
    expect(((await reread.json()) as Conversation).title).toBe("second");
    expectAtLeast(bookmarkOf(reread), afterPatch);

    const deleted = await call(alice, "DELETE", `/conversations/${conversation.id}`);
    expect(deleted.status).toBe(204);
    const afterDelete = bookmarkOf(deleted);
    expect(afterDelete > afterPatch).toBe(true);
    const gone = await call(
      alice,
      "GET",
      `/conversations/${conversation.id}`,
      undefined,
      withBookmark(afterDelete),
    );
    await expectError(gone, 404, "not_found");
    expectAtLeast(bookmarkOf(gone), afterDelete);
  });

  it("is on a stream: false turn, at least as new as its stored answer", async () => {
    const alice = newUser("bm-turn");
    const conversation = (await (await call(alice, "POST", "/conversations", {})).json()) as Conversation;
    const turn = await call(alice, "POST", `/conversations/${conversation.id}/messages`, {
      content: `hello [[stand-in tokens=3 tag=${newTag()}]]`,
      stream: false,
    });
    expect(turn.status).toBe(200);
    const bookmark = bookmarkOf(turn);
    const result = (await turn.json()) as TurnResult;
    expect(result).not.toHaveProperty("d1_bookmark");
    const answer = await call(
      alice,
      "GET",
      `/messages/${result.assistant_message!.id}`,
      undefined,
      withBookmark(bookmark),
    );
    expect(((await answer.json()) as ApiMessage).status).toBe("completed");
    expectAtLeast(bookmarkOf(answer), bookmark);
  });

  it("is on a turn's error response when the failed call wrote its answer (422 content_filtered)", async () => {
    const alice = newUser("bm-turn-422");
    const created = await call(alice, "POST", "/conversations", {});
    const before = bookmarkOf(created);
    const conversation = (await created.json()) as Conversation;
    for (const stream of [false, true]) {
      const turn = await call(alice, "POST", `/conversations/${conversation.id}/messages`, {
        content: `flagged [[stand-in error=data_inspection_failed tag=${newTag()}]]`,
        stream,
      });
      await expectError(turn, 422, "content_filtered");
      const bookmark = bookmarkOf(turn, alice);
      expectAtLeast(bookmark, before);
      const messages = await call(
        alice,
        "GET",
        `/conversations/${conversation.id}/messages`,
        undefined,
        withBookmark(bookmark),
      );
      const { data } = (await messages.json()) as { data: ApiMessage[] };
      expect(data.filter((m) => m.role === "assistant" && m.status === "failed")).toHaveLength(
        stream ? 2 : 1,
      );
    }
  });

  it("of a streamed turn's stored answer comes in its terminal event, and reads the answer back", async () => {
    const alice = newUser("bm-stream");
    const created = await call(alice, "POST", "/conversations", {});
    const beforeTurn = bookmarkOf(created);
    const conversation = (await created.json()) as Conversation;
    const res = await call(alice, "POST", `/conversations/${conversation.id}/messages`, {
      content: `hello [[stand-in tokens=5 tag=${newTag()}]]`,
    });
    // The headers go out after the turn's commit (a short answer may even be stored by then).
    expect(bookmarkOf(res) > beforeTurn).toBe(true);
    const { events } = await readSse(res);
    const last = events.at(-1)!;
    expect(last.event).toBe("message.completed");
    const terminal = last.data as { d1_bookmark?: string };
    expect(terminal.d1_bookmark).toMatch(BOOKMARK);
    expect(terminal.d1_bookmark! > beforeTurn).toBe(true);

    const answerId = endMessage(last).id;
    const page = await call(
      alice,
      "GET",
      `/conversations/${conversation.id}/messages`,
      undefined,
      withBookmark(terminal.d1_bookmark!),
    );
    const stored = ((await page.json()) as { data: ApiMessage[] }).data.find((m) => m.id === answerId);
    expect(stored?.status).toBe("completed");
    expect(stored?.content).toBe(endMessage(last).content);
    expectAtLeast(bookmarkOf(page), terminal.d1_bookmark!);

    // A resumed stream replays the same terminal event, bookmark included.
    const replay = await readSse(await call(alice, "GET", `/messages/${answerId}/events`));
    expect(replay.events.at(-1)!.data).toEqual(last.data);
  });

  it("of a stopped answer is on the stop's response and in the stream's message.failed", async () => {
    const alice = newUser("bm-stop");
    const conversation = (await (await call(alice, "POST", "/conversations", {})).json()) as Conversation;
    const phone = await openTurn(alice, conversation.id, { content: "long [[stand-in tokens=400 itl=10]]" });
    const messageId = startedData((await phone.next())!).assistant_message.id;
    await phone.next();
    const stop = await call(alice, "POST", `/messages/${messageId}/stop`);
    expect(stop.status).toBe(200);
    const stopped = bookmarkOf(stop);
    expect(((await stop.json()) as ApiMessage).status).toBe("cancelled");
    const rest = await phone.rest();
    expect(rest.at(-1)!.event).toBe("message.failed");
    const terminal = rest.at(-1)!.data as { d1_bookmark?: string };
    expect(terminal.d1_bookmark).toMatch(BOOKMARK);
    expectAtLeast(stopped, terminal.d1_bookmark!);
  });

  it("of an AI SDK send is on its response and in its finish chunk's metadata", async () => {
    const alice = newUser("bm-ui");
    const created = await call(alice, "POST", "/conversations", {});
    const beforeTurn = bookmarkOf(created);
    const conversation = (await created.json()) as Conversation;
    const res = await call(alice, "POST", "/ui/conversations", {
      id: conversation.id,
      messages: [
        { id: "ui-bookmark-1", role: "user", parts: [{ type: "text", text: "Hi [[stand-in tokens=2]]" }] },
      ],
      trigger: "submit-message",
    });
    expect(res.status).toBe(200);
    expect(bookmarkOf(res) > beforeTurn).toBe(true);
    const chunks = (await res.text())
      .split("\n\n")
      .filter((frame) => frame.startsWith("data: {"))
      .map(
        (frame) => JSON.parse(frame.slice(6)) as { type: string; messageMetadata?: { d1_bookmark?: string } },
      );
    const finish = chunks.find((chunk) => chunk.type === "finish");
    expect(finish?.messageMetadata?.d1_bookmark).toMatch(BOOKMARK);
    expect(finish!.messageMetadata!.d1_bookmark! > beforeTurn).toBe(true);
  });

  it("is on the OpenAI-compatible endpoint's responses, streamed or not", async () => {
    const alice = newUser("bm-openai");
    const before = bookmarkOf(await call(alice, "GET", "/conversations"));
    const body = { model: "qwen-plus", messages: [{ role: "user", content: "hi [[stand-in tokens=2]]" }] };
    const plain = await call(alice, "POST", "/chat/completions", body, withBookmark(before));
    expect(plain.status).toBe(200);
    expect(bookmarkOf(plain) > before).toBe(true);
    const streamed = await call(alice, "POST", "/chat/completions", { ...body, stream: true });
    expect(streamed.status).toBe(200);
    bookmarkOf(streamed);
    await streamed.text();
  });

  it("is not on a response that did not touch the user's data", async () => {
    const alice = newUser("bm-none");
    const models = await call(alice, "GET", "/models");
    expect(models.status).toBe(200);
    expect(models.headers.get("x-d1-bookmark")).toBeNull();
  });

  it("refuses a malformed bookmark with 400 naming the header, changing nothing", async () => {
    const alice = newUser("bm-garbage");
    const valid = bookmarkOf(await call(alice, "GET", "/conversations"));
    // Local D1 takes any string; "zzz…" would even stick as the session's latest bookmark.
    for (const garbage of [
      "garbage",
      "zzzzzzzz-zzzzzzzz-zzzzzzzz-zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
      valid.slice(0, 20),
      // Upper-case hex: D1 writes lower case.
      `A${valid.slice(1)}`,
      ` ${valid}x`,
    ]) {
      const res = await call(alice, "POST", "/conversations", { title: "never" }, withBookmark(garbage));
      await expectError(res, 400, "invalid_request", "x-d1-bookmark");
      expect(res.headers.get("x-d1-bookmark")).toBeNull();
    }
    const read = await call(alice, "GET", "/conversations", undefined, withBookmark("not-a-bookmark"));
    await expectError(read, 400, "invalid_request", "x-d1-bookmark");
    expect(await rowsOnAllShards("SELECT id FROM conversations WHERE user_id = ?", alice)).toEqual([]);
  });

  it("takes a header sent twice alike (joined by a comma on the way); two different values are 400", async () => {
    const alice = newUser("bm-repeated");
    const written = bookmarkOf(await call(alice, "POST", "/api-keys", { name: "phone" }));
    const twice = await call(alice, "GET", "/api-keys", undefined, withBookmark(`${written}, ${written}`));
    expect(twice.status).toBe(200);
    expectAtLeast(bookmarkOf(twice, alice), written);
    const later = bookmarkOf(twice);
    const differing = await call(alice, "GET", "/api-keys", undefined, withBookmark(`${written}, ${later}`));
    await expectError(differing, 400, "invalid_request", "x-d1-bookmark");
  });

  it("refuses a malformed shard tag with 400 naming the header, changing nothing", async () => {
    const alice = newUser("bm-bad-tag");
    const valid = bookmarkOf(await call(alice, "GET", "/conversations"));
    const raw = d1Part(valid);
    const tag = valid.slice(0, 4);
    for (const garbage of [
      `~${raw}`,
      `${tag.slice(1)}~${raw}`, // the tag has exactly 4 digits: one spelling per shard
      `0${tag}~${raw}`,
      `-001~${raw}`,
      `00x1~${raw}`,
      `${tag}.${raw}`,
      `${tag}~${tag}~${raw}`,
      `${raw}~${tag}`,
      `${valid}x`,
    ]) {
      const res = await call(alice, "POST", "/conversations", { title: "never" }, withBookmark(garbage));
      await expectError(res, 400, "invalid_request", "x-d1-bookmark");
      expect(res.headers.get("x-d1-bookmark")).toBeNull();
    }
    expect(await rowsOnAllShards("SELECT id FROM conversations WHERE user_id = ?", alice)).toEqual([]);
  });

  it("opens the session at a bookmark of the user's shard (the control for the next test)", async () => {
    const alice = userOnShard("bm-own-shard", 1);
    const own = shardIndex(alice, shardDatabases(env).length);
    const res = await call(alice, "GET", "/conversations", undefined, withBookmark(tagged(own, FUTURE)));
    expect(res.status).toBe(200);
    expect(bookmarkOf(res, alice)).toBe(tagged(own, FUTURE));
  });

  it("ignores a bookmark of another shard or an untagged one: the request reads from the primary", async () => {
    const alice = userOnShard("bm-other-shard", 1);
    const own = shardIndex(alice, shardDatabases(env).length);
    const created = await call(alice, "POST", "/conversations", { title: "mine" });
    expect(created.status).toBe(201);
    const written = bookmarkOf(created, alice);
    const { id } = (await created.json()) as Conversation;
    // With more than one shard (the suite binds two) a bookmark without a tag may be of any of
    // them, so it is ignored too; `TEST_SHARDS=1` runs leave it out (it is used there).
    const untagged = shardDatabases(env).length > 1 ? [FUTURE] : [];
    for (const foreign of [tagged(own === 0 ? 1 : 0, FUTURE), tagged(7, FUTURE), ...untagged]) {
      const res = await call(alice, "GET", "/conversations", undefined, withBookmark(foreign));
      expect(res.status, foreign).toBe(200);
      expect(((await res.json()) as { data: { id: string }[] }).data.map((c) => c.id)).toEqual([id]);
      // Opened at the primary, not at the foreign bookmark: the response's bookmark is a real
      // position of the user's shard, tagged with it, at least as new as the write.
      const bookmark = bookmarkOf(res, alice);
      expect(d1Part(bookmark)).not.toBe(FUTURE);
      expectAtLeast(bookmark, written);
    }
  });

  it("reads an untagged bookmark, the form before the tag, only when the deployment has one shard", () => {
    const raw = "00000000-00000012-00000000-00000000000000000000000000000000";
    expect(readBookmark(raw, { index: 0, count: 1 })).toEqual({ ok: true, bookmark: raw });
    expect(readBookmark(raw, { index: 0, count: 2 })).toEqual({ ok: true, bookmark: null });
    expect(readBookmark(`0000~${raw}`, { index: 0, count: 1 })).toEqual({ ok: true, bookmark: raw });
    expect(readBookmark(`0001~${raw}`, { index: 0, count: 2 })).toEqual({ ok: true, bookmark: null });
    expect(readBookmark(`~${raw}`, { index: 0, count: 1 })).toEqual({ ok: false });
  });

  it("sorts a moved user's new-shard bookmark after their old-shard one", () => {
    // Apps keep the greater of two bookmarks as strings (README): a reshard moves users only to a
    // higher-numbered shard, so that rule picks the new shard's even when its D1 part is smaller.
    const old = tagged(1, "ffffffff-ffffffff-ffffffff-ffffffffffffffffffffffffffffffff");
    const moved = tagged(2, "00000000-00000001-00000000-00000000000000000000000000000000");
    expect(moved > old).toBe(true);
  });
});
