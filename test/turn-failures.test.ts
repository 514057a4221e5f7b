import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  expectError,
  listMessages,
  newTag,
  newUser,
  standInRequests,
  streamTurn,
} from "./helpers/api";

const turn = (user: string, conv: string, content: string, extra: Record<string, unknown> = {}) =>
  call(user, "POST", `/conversations/${conv}/messages`, { content, ...extra });

describe("upstream errors before the stream", () => {
  it.each([
    ["data_inspection_failed", 422, "content_filtered"],
    ["invalid_api_key", 502, "upstream_error"],
    ["model_not_found", 400, "invalid_request"],
  ])("%s → %i %s; the user message is kept and the answer recorded as failed", async (name, status, code) => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const error = await expectError(await turn(alice, conv.id, `x [[stand-in error=${name}]]`), status, code);
    expect(error.message).not.toContain("sk-");
    const [assistant, user] = await listMessages(alice, conv.id);
    expect(user!.role).toBe("user");
    expect(user!.status).toBe("completed");
    expect(assistant!.status).toBe("failed");
    expect(assistant!.error).toMatchObject({ code });
    expect(assistant!.usage).toBeNull();
  });

  it("a rate limit that outlasts the retries is 429 rate_limited with Retry-After", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const res = await turn(alice, conv.id, `x [[stand-in error=limit_requests retry_after=0 tag=${tag}]]`);
    expect(res.headers.get("retry-after")).toMatch(/^\d+$/);
    await expectError(res, 429, "rate_limited");
    expect((await standInRequests(tag)).length).toBe(3);
  });

  it("a transient 503 is retried before the first byte and the turn succeeds", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const { events } = await streamTurn(alice, conv.id, {
      content: `x [[stand-in error=service_unavailable fail_times=1 retry_after=0 tag=${tag}]]`,
    });
    expect(events.at(-1)!.event).toBe("message.completed");
    expect((await standInRequests(tag)).map((r) => r.attempt)).toEqual([1, 2]);
  });

  it("after a failed turn the client can send again", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await expectError(
      await turn(alice, conv.id, "x [[stand-in error=data_inspection_failed]]"),
      422,
      "content_filtered",
    );
    const { events } = await streamTurn(alice, conv.id, { content: "again [[stand-in tokens=2]]" });
    expect(events.at(-1)!.event).toBe("message.completed");
    expect((await listMessages(alice, conv.id)).map((m) => m.status)).toEqual([
      "completed",
      "completed",
      "failed",
      "completed",
    ]);
  });
});

describe("failures inside the stream", () => {
  it.each([
    ["midstream=openai after=3", "content_filtered"],
    ["midstream=native after=3", "rate_limited"],
    ["disconnect=3", "upstream_error"],
  ])("%s ends with message.failed, status interrupted, partial content kept", async (directive, code) => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const { events } = await streamTurn(alice, conv.id, { content: `x [[stand-in tokens=10 ${directive}]]` });
    const terminal = events.at(-1)!;
    expect(terminal.event).toBe("message.failed");
    expect(events.filter((e) => e.event.startsWith("message.") && e.event !== "message.delta")).toHaveLength(
      1,
    );
    const partial = events
      .filter((e) => e.event === "message.delta")
      .map((e) => e.data.content)
      .join("");
    expect(partial.length).toBeGreaterThan(0);
    const message = endMessage(terminal);
    expect(message.status).toBe("interrupted");
    expect(message.content).toBe(partial);
    expect(message.error).toMatchObject({ code });
    expect(message.finish_reason).toBeNull();
    const [stored] = await listMessages(alice, conv.id);
    expect(stored).toEqual(message);
  });
});
