import { exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { Change, SyncPage } from "../src/resources/sync";
import { newId } from "../src/store/ids";
import { resetSyncEpoch } from "../src/store/sync";
import type { Conversation, Message } from "../src/store/types";
import {
  BASE,
  call,
  createConversation,
  endMessage,
  expectError,
  newUser,
  openTurn,
  startedData,
  streamTurn,
} from "./helpers/api";
import { dbOf } from "./helpers/shards";
import { parseStrictJson } from "./helpers/strict-json";
import { WEATHER_TOOL } from "./helpers/tools";

// API.md §2.3: GET /v1/sync?since=&limit= → {changes, next_since, has_more}: the caller's changes
// in commit order (a message when created, when final, when its sibling_count changes; a
// conversation on every change, a tombstone when deleted), a snapshot without `since`, 410
// sync_expired past SYNC_RETENTION_DAYS or across an account's epochs.

/** A client's local copy, kept only by applying changes. */
class SyncClient {
  readonly conversations = new Map<string, Conversation>();
  readonly messages = new Map<string, Message>();
  since: string | null = null;
  requests = 0;

  constructor(
    readonly userId: string,
    readonly limit: number,
  ) {}

  /** Syncs until `has_more` is false; returns every change received. */
  async sync(): Promise<Change[]> {
    const received: Change[] = [];
    for (;;) {
      const page = await syncPage(this.userId, this.since, this.limit);
      this.requests++;
      expect(page.changes.length).toBeLessThanOrEqual(this.limit);
      for (const change of page.changes) this.apply(change);
      received.push(...page.changes);
      this.since = page.next_since;
      if (!page.has_more) return received;
    }
  }

  apply(change: Change): void {
    if (change.op === "delete") {
      this.conversations.delete(change.id);
      for (const [id, m] of this.messages) if (m.conversation_id === change.id) this.messages.delete(id);
    } else if (change.type === "conversation") {
      this.conversations.set(change.id, change.data);
    } else {
      // A message never arrives before its conversation.
      expect(this.conversations.has(change.conversation_id)).toBe(true);
      this.messages.set(change.id, change.data);
    }
  }

  /** The copy, in a comparable form. */
  state() {
    const byId = <T extends { id: string }>(map: Map<string, T>) =>
      [...map.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    return { conversations: byId(this.conversations), messages: byId(this.messages) };
  }
}

async function syncPage(userId: string, since: string | null, limit: number): Promise<SyncPage> {
  const q = new URLSearchParams({ limit: String(limit) });
  if (since !== null) q.set("since", since);
  const res = await call(userId, "GET", `/sync?${q}`);
  expect(res.status).toBe(200);
  return parseStrictJson(await res.text()) as SyncPage;
}

/** A fresh client's snapshot, read in pages of `limit`. */
async function snapshot(userId: string, limit = 7) {
  const client = new SyncClient(userId, limit);
  await client.sync();
  return client;
}

/** The server's state as the rest of the API shows it (not through /v1/sync). */
async function serverState(userId: string) {
  const { results: ids } = await dbOf(userId)
    .prepare("SELECT id FROM messages WHERE user_id = ? ORDER BY id")
    .bind(userId)
    .all<{ id: string }>();
  const res = await call(userId, "GET", "/conversations?archived=all&limit=100");
  const conversations = ((await res.json()) as { data: Conversation[] }).data.sort((a, b) =>
    a.id < b.id ? -1 : 1,
  );
  const messages: Message[] = [];
  for (const { id } of ids)
    messages.push((await (await call(userId, "GET", `/messages/${id}`)).json()) as Message);
  return { conversations, messages };
}

/** The user's log rows, oldest first (test inspection). */
async function logOf(userId: string) {
  const { results } = await dbOf(userId)
    .prepare("SELECT seq, type, op, id, conversation_id FROM changes WHERE user_id = ? ORDER BY seq")
    .bind(userId)
    .all<{ seq: number; type: string; op: string; id: string; conversation_id: string }>();
  return results;
}

describe("a sync client", () => {
  it("that applies every page ends with exactly the server's state, through turns, tool results, PATCHes and deletions", async () => {
    const alice = newUser("sync-alice");
    const bob = newUser("sync-bob");
    const bobConv = await createConversation(bob, { title: "Bob's" });
    await streamTurn(bob, bobConv.id, { content: "bob's secret [[stand-in tokens=2]]" });

    const client = new SyncClient(alice, 3);
    // Before anything exists: an empty snapshot whose token continues the log.
    expect(await client.sync()).toEqual([]);

    const a = await createConversation(alice, { title: "Weather", parameters: { tools: [WEATHER_TOOL] } });
    await streamTurn(alice, a.id, { content: "hello [[stand-in tokens=3]]" });
    await client.sync();
    expect(client.state()).toEqual(await serverState(alice));

    // An answer still streaming is synced as it is, then again when it is final.
    const reader = await openTurn(alice, a.id, { content: "slow [[stand-in tokens=4 itl=100]]" });
    const started = startedData(await reader.next());
    const midway = await client.sync();
    expect(midway.find((c) => c.id === started.assistant_message.id)).toMatchObject({
      type: "message",
      op: "upsert",
      data: { status: "streaming" },
    });
    const done = endMessage((await reader.rest()).at(-1));
    expect(done.status).toBe("completed");
    const after = await client.sync();
    expect(after.find((c) => c.id === done.id)).toMatchObject({ data: { status: "completed" } });
    expect(client.messages.get(done.id)).toEqual(done);

    // A tool call and its result.
    const call1 = await streamTurn(alice, a.id, { content: "weather? [[stand-in tool_call]]" });
    const toolCall = endMessage(call1.events.at(-1)).tool_calls![0]!;
    await streamTurn(alice, a.id, { role: "tool", tool_call_id: toolCall.id, content: "18C" });
    // A PATCH, a second conversation, and a third deleted after the client saw it.
    expect(
      (await call(alice, "PATCH", `/conversations/${a.id}`, { title: "Renamed", archived: true })).status,
    ).toBe(200);
    const b = await createConversation(alice, { title: "Second" });
    await streamTurn(alice, b.id, { content: "second [[stand-in tokens=2]]" });
    const c = await createConversation(alice, { title: "Doomed" });
    await streamTurn(alice, c.id, { content: "doomed [[stand-in tokens=2]]" });
    await client.sync();
    expect(client.conversations.has(c.id)).toBe(true);
    expect((await call(alice, "DELETE", `/conversations/${c.id}`)).status).toBe(204);
    // And one created and deleted between two syncs: the client never sees its rows, only the tombstone.
    const d = await createConversation(alice, { title: "Fleeting" });
    await streamTurn(alice, d.id, { content: "fleeting [[stand-in tokens=2]]" });
    expect((await call(alice, "DELETE", `/conversations/${d.id}`)).status).toBe(204);
    const last = await client.sync();
    expect(last.filter((ch) => ch.conversation_id === d.id)).toEqual([
      {
        seq: expect.any(Number),
        type: "conversation",
        op: "delete",
        id: d.id,
        conversation_id: d.id,
        data: null,
      },
    ]);
    expect(client.conversations.has(c.id)).toBe(false);
    expect([...client.messages.values()].some((m) => m.conversation_id === c.id)).toBe(false);

    const server = await serverState(alice);
    expect(server.conversations.map((x) => x.id)).toEqual([a.id, b.id]);
    expect(server.messages.length).toBe(10);
    expect(client.state()).toEqual(server);
    // A fresh snapshot, in pages of another size, agrees.
    expect((await snapshot(alice)).state()).toEqual(client.state());
    // Only Alice's data, ever.
    expect(JSON.stringify(client.state())).not.toContain(bobConv.id);
    expect((await snapshot(bob)).state()).toEqual(await serverState(bob));
  });

  it("that takes a snapshot while the account changes, then syncs, misses nothing", async () => {
    const alice = newUser("sync-race");
    const convs: Conversation[] = [];
    for (let i = 0; i < 3; i++) {
      const conv = await createConversation(alice, { title: `c${i}` });
      await streamTurn(alice, conv.id, { content: `turn ${i} [[stand-in tokens=2]]` });
      convs.push(conv);
    }
    const client = new SyncClient(alice, 2);
    // The first snapshot page, then changes behind and ahead of its position, then the rest.
    const first = await syncPage(alice, null, 2);
    for (const change of first.changes) client.apply(change);
    expect(first.has_more).toBe(true);
    client.since = first.next_since;
    await streamTurn(alice, convs[0]!.id, { content: "behind [[stand-in tokens=2]]" });
    expect((await call(alice, "PATCH", `/conversations/${convs[0]!.id}`, { title: "patched" })).status).toBe(
      200,
    );
    expect((await call(alice, "DELETE", `/conversations/${convs[2]!.id}`)).status).toBe(204);
    const late = await createConversation(alice, { title: "late" });
    await streamTurn(alice, late.id, { content: "ahead [[stand-in tokens=2]]" });
    await client.sync();
    // The snapshot's last token continues the log from where the snapshot began.
    await client.sync();
    expect(client.state()).toEqual(await serverState(alice));
    expect((await snapshot(alice, 100)).state()).toEqual(client.state());
  });
});

describe("the change log", () => {
  it("records a message when created and when final, and a conversation on every change but a version bump", async () => {
    const alice = newUser("sync-log");
    const conv = await createConversation(alice);
    const { events } = await streamTurn(alice, conv.id, { content: "hi [[stand-in tokens=2]]" });
    const { user_message: user, assistant_message: answer } = startedData(events[0]);
    const log = await logOf(alice);
    expect(log.map((r) => r.seq)).toEqual(log.map((_, i) => i + 1));
    // Each message when created, the answer again when final.
    expect(log.filter((r) => r.type === "message").map((r) => r.id)).toEqual([user.id, answer.id, answer.id]);
    // The conversation when created, and again after the answer (its updated_at), in the same batch.
    expect(log[0]).toMatchObject({ type: "conversation", op: "upsert", id: conv.id });
    expect(log.at(-1)).toMatchObject({ type: "conversation", op: "upsert", id: conv.id });
    const final = log.findLastIndex((r) => r.id === answer.id);
    expect(log[final + 1]).toEqual(log.at(-1));
    // Every message write bumped the conversation's version; none of those bumps is in the log.
    const { version } = (await dbOf(alice)
      .prepare("SELECT version FROM conversations WHERE id = ?")
      .bind(conv.id)
      .first<{ version: number }>())!;
    expect(version).toBeGreaterThanOrEqual(3);
    expect(log.filter((r) => r.type === "conversation").length).toBeLessThan(version);
    // Other updates of a message are not changes a client needs.
    await dbOf(alice).prepare("UPDATE messages SET ttft_ms = 1 WHERE id = ?").bind(answer.id).run();
    expect(await logOf(alice)).toEqual(log);
    await dbOf(alice)
      .prepare("UPDATE conversations SET version = version + 1 WHERE id = ?")
      .bind(conv.id)
      .run();
    expect(await logOf(alice)).toEqual(log);
  });

  it("records the earlier siblings of a new message, whose sibling_count has grown", async () => {
    const alice = newUser("sync-siblings");
    const conv = await createConversation(alice);
    const { events } = await streamTurn(alice, conv.id, { content: "hi [[stand-in tokens=2]]" });
    const { user_message: user, assistant_message: answer } = startedData(events[0]);
    const before = (await logOf(alice)).length;
    // A second answer to the same user message, as a regenerate stores it.
    const sibling = newId();
    await dbOf(alice)
      .prepare(
        `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, content_json, status, created_at)
       VALUES (?, ?, ?, ?, 'assistant', '"again"', 'completed', ?)`,
      )
      .bind(sibling, conv.id, alice, user.id, Date.now())
      .run();
    const added = (await logOf(alice)).slice(before);
    expect(added.map((r) => [r.seq, r.type, r.op, r.id])).toEqual([
      [before + 1, "message", "upsert", sibling],
      [before + 2, "message", "upsert", answer.id],
    ]);
  });

  it("is per user: each user's seq counts from 1", async () => {
    const [alice, bob] = [newUser("sync-a"), newUser("sync-b")];
    await createConversation(alice);
    await createConversation(bob);
    await createConversation(alice);
    expect((await logOf(alice)).map((r) => r.seq)).toEqual([1, 2]);
    expect((await logOf(bob)).map((r) => r.seq)).toEqual([1]);
  });
});

describe("sync tokens", () => {
  it("pages with small limits give every change exactly once, in order", async () => {
    const alice = newUser("sync-pages");
    for (let i = 0; i < 3; i++) {
      const conv = await createConversation(alice, { title: `t${i}` });
      await streamTurn(alice, conv.id, { content: `x${i} [[stand-in tokens=2]]` });
    }
    const start = await syncPage(alice, null, 100);
    expect(start.has_more).toBe(false);
    // New changes after the snapshot, read one per page.
    const conv = await createConversation(alice, { title: "new" });
    await streamTurn(alice, conv.id, { content: "y [[stand-in tokens=2]]" });
    const seqs: number[] = [];
    let since = start.next_since;
    for (let more = true; more; ) {
      const page = await syncPage(alice, since, 1);
      seqs.push(...page.changes.map((c) => c.seq));
      since = page.next_since;
      more = page.has_more;
    }
    const log = await logOf(alice);
    const head = start.changes[0]!.seq;
    expect(seqs).toEqual(log.filter((r) => r.seq > head).map((r) => r.seq));
    // The conversation, its two messages, the answer's final status, the conversation again at least.
    expect(seqs.length).toBeGreaterThanOrEqual(5);
    // Nothing more: the same token again.
    expect(await syncPage(alice, since, 1)).toEqual({ changes: [], next_since: since, has_more: false });
  });

  it("is 410 sync_expired when changes after it are past the retention", async () => {
    const alice = newUser("sync-expired");
    await createConversation(alice);
    const token = (await syncPage(alice, null, 100)).next_since;
    const conv = await createConversation(alice);
    // Up to date: a token is good however old while nothing changed after it.
    const fresh = (await syncPage(alice, null, 100)).next_since;
    await dbOf(alice)
      .prepare("UPDATE changes SET created_at = created_at - ? WHERE user_id = ?")
      .bind(31 * 86_400_000, alice)
      .run();
    await expectError(await call(alice, "GET", `/sync?since=${token}`), 410, "sync_expired", "since");
    expect((await syncPage(alice, fresh, 100)).changes).toEqual([]);
    // The retention prune keeps the newest row, so numbering goes on: a snapshot then works.
    expect((await logOf(alice)).map((r) => r.seq)).toEqual([2]);
    const again = await snapshot(alice);
    expect(again.conversations.has(conv.id)).toBe(true);
    await call(alice, "PATCH", `/conversations/${conv.id}`, { title: "after" });
    await again.sync();
    expect(again.conversations.get(conv.id)?.title).toBe("after");
    // The old row is pruned once a newer one exists.
    expect((await logOf(alice)).map((r) => r.seq)).toEqual([3]);
  });

  it("is 410 sync_expired after an account's sync epoch is reset, and for a position the log never had", async () => {
    const alice = newUser("sync-epoch");
    await createConversation(alice);
    const client = await snapshot(alice);
    const old = client.since!;
    await resetSyncEpoch(dbOf(alice), alice);
    await expectError(await call(alice, "GET", `/sync?since=${old}`), 410, "sync_expired", "since");
    // A token of the right shape for a position past the log's head.
    const decoded = JSON.parse(atob(old.replace(/-/g, "+").replace(/_/g, "/"))) as { e: string; s: number };
    const epoch = (await dbOf(alice).prepare("SELECT sync_epoch FROM users WHERE id = ?").bind(alice).first<{
      sync_epoch: string;
    }>())!.sync_epoch;
    expect(epoch).not.toBe(decoded.e);
    const ahead = btoa(JSON.stringify({ k: "s", e: epoch, s: 99 })).replace(/=+$/, "");
    await expectError(await call(alice, "GET", `/sync?since=${ahead}`), 410, "sync_expired", "since");
    // Another user's token names another epoch.
    const bob = newUser("sync-epoch-bob");
    await createConversation(bob);
    const bobs = (await snapshot(bob)).since!;
    await expectError(await call(alice, "GET", `/sync?since=${bobs}`), 410, "sync_expired");
  });

  it.each([
    ["garbage", "not-a-token"],
    ["a message cursor", btoa(JSON.stringify({ k: "m", i: "x" })).replace(/=+$/, "")],
    ["a negative position", btoa(JSON.stringify({ k: "s", e: "", s: -1 })).replace(/=+$/, "")],
    ["half a snapshot position", btoa(JSON.stringify({ k: "s", e: "", s: 0, c: "x" })).replace(/=+$/, "")],
  ])("is 400 invalid_request for %s, param since", async (_, since) => {
    const alice = newUser("sync-bad");
    await expectError(await call(alice, "GET", `/sync?since=${since}`), 400, "invalid_request", "since");
  });

  it.each(["0", "501", "x"])("is 400 invalid_request for limit %s", async (limit) => {
    await expectError(
      await call(newUser("sync-bad"), "GET", `/sync?limit=${limit}`),
      400,
      "invalid_request",
      "limit",
    );
  });

  it("needs authentication", async () => {
    await expectError(await exports.default.fetch(`${BASE}/sync`), 401, "unauthorized");
  });
});
