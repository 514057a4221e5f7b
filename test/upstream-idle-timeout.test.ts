import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  newTag,
  newUser,
  standInRequests,
  streamTurn,
} from "./helpers/api";
import type { ReservationRow, UsageRecordRow } from "./helpers/db-rows";
import { dbOf } from "./helpers/shards";

// vitest.config.ts sets UPSTREAM_IDLE_TIMEOUT_MS to 2000 (and pings clients every 300 ms).
const IDLE_TIMEOUT_MS = Number(env.UPSTREAM_IDLE_TIMEOUT_MS);

const records = async (userId: string) =>
  (
    await dbOf(userId)
      .prepare("SELECT * FROM usage_records WHERE user_id = ?")
      .bind(userId)
      .all<UsageRecordRow>()
  ).results;
const reservations = async (userId: string) =>
  (
    await dbOf(userId)
      .prepare("SELECT * FROM quota_reservations WHERE user_id = ?")
      .bind(userId)
      .all<ReservationRow>()
  ).results;

/** The stand-in's entry for `tag` once the Worker has closed that upstream request. */
const closedUpstream = (tag: string) =>
  eventually(async () => {
    const [entry] = await standInRequests(tag);
    return entry?.ended_at ? entry : null;
  });

describe("an upstream that goes quiet mid-answer", () => {
  it.each([
    ["after three tokens", "tokens=5 stall=3", 3],
    ["sending only SSE comments", "tokens=5 stall=2 stall_ping=200", 2],
    ["after its first chunk (a 10-minute pause between chunks)", "tokens=5 itl=600000", 0],
  ])(
    "%s: the answer ends as interrupted with what was received, and the conversation is free",
    async (_name, directive, tokens) => {
      expect(IDLE_TIMEOUT_MS).toBeGreaterThan(0);
      const alice = newUser("alice");
      const conv = await createConversation(alice);
      const tag = newTag();
      const startedAt = Date.now();
      const { events, comments } = await streamTurn(alice, conv.id, {
        content: `Hi [[stand-in ${directive} tag=${tag}]]`,
      });
      expect(Date.now() - startedAt).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS);
      // The client was kept connected while it waited.
      expect(comments).toContain("ping");

      const last = events.at(-1)!;
      expect(last.event).toBe("message.failed");
      const message = endMessage(last);
      expect(message.status).toBe("interrupted");
      expect(message.error).toMatchObject({ code: "upstream_timeout" });
      const received = events
        .filter((e) => e.event === "message.delta")
        .map((e) => e.data.content ?? "")
        .join("");
      expect(message.content).toBe(received);
      expect(received.split(" ").filter(Boolean)).toHaveLength(tokens);
      expect(message.usage).toMatchObject({ estimated: true });

      // The upstream request was closed, the usage settled once, the reservation released.
      expect((await closedUpstream(tag)).outcome).toBe("client_closed");
      const [record, ...more] = await records(alice);
      expect(more).toEqual([]);
      expect(record).toMatchObject({ id: message.id, status: "interrupted", estimated: 1 });
      expect(await reservations(alice)).toEqual([]);

      // No 409: the next turn is answered.
      const next = await streamTurn(alice, conv.id, { content: "Again [[stand-in tokens=2]]" });
      expect(next.events.at(-1)!.event).toBe("message.completed");
    },
  );

  it("a slow but steady stream is not cut: each chunk resets the timeout", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    // Five writes (role, one token, finish, usage, [DONE]) 0.3 × the timeout apart: longer than
    // the timeout in all, never idle that long.
    const { events } = await streamTurn(alice, conv.id, {
      content: `Slow [[stand-in tokens=1 itl=${Math.floor(IDLE_TIMEOUT_MS * 0.3)}]]`,
    });
    expect(events.at(-1)!.event).toBe("message.completed");
  });
});

describe("/v1/chat/completions streaming from an upstream that goes quiet", () => {
  it("ends with an upstream_timeout error frame after what was received, and settles the usage", async () => {
    const alice = newUser("oc");
    await createConversation(alice); // the user row
    const tag = newTag();
    const startedAt = Date.now();
    const res = await call(alice, "POST", "/chat/completions", {
      model: "qwen-plus",
      stream: true,
      messages: [{ role: "user", content: `Hi [[stand-in tokens=5 stall=3 tag=${tag}]]` }],
    });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS);
    const frames = text
      .split("\n\n")
      .filter((b) => b.startsWith("data: "))
      .map((b) => b.slice(6));
    expect(frames).not.toContain("[DONE]");
    const chunks = frames.slice(0, -1).map((f) => JSON.parse(f));
    expect(chunks.filter((c) => c.choices[0]?.delta?.content)).toHaveLength(3);
    expect(JSON.parse(frames.at(-1)!)).toEqual({
      error: { code: "upstream_timeout", type: "api_error", param: null, message: expect.any(String) },
    });

    expect((await closedUpstream(tag)).outcome).toBe("client_closed");
    const [record] = await eventually(async () => {
      const rows = await records(alice);
      return rows.length === 1 && (await reservations(alice)).length === 0 ? rows : null;
    });
    expect(record).toMatchObject({ status: "failed", estimated: 1 });
    expect(record!.completion_tokens).toBeGreaterThan(0);
  });

  it("a non-streamed answer whose body stops mid-way is 504 upstream_timeout in OpenAI's envelope", async () => {
    const tag = newTag();
    const startedAt = Date.now();
    const res = await call(newUser("oc"), "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: `Hi [[stand-in tokens=5 stall tag=${tag}]]` }],
    });
    expect(res.status).toBe(504);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(IDLE_TIMEOUT_MS);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({
      code: "upstream_timeout",
      type: "api_error",
    });
    expect((await closedUpstream(tag)).outcome).toBe("client_closed");
  });
});
