import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  expectError,
  listMessages,
  newTag,
  newUser,
  openTurn,
  resume,
  SseReader,
  standInRequests,
  startedData,
} from "./helpers/api";
import type { ApiMessage, TurnResult } from "./helpers/api-types";
import { dbOf } from "./helpers/shards";

describe("stopping an answer", () => {
  it("aborts the upstream request, stores the partial answer as cancelled and ends every open stream", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const phone = await openTurn(alice, conv.id, {
      content: `long [[stand-in tokens=400 itl=10 tag=${tag}]]`,
    });
    const started = (await phone.next())!;
    const messageId = startedData(started).assistant_message.id;
    const tablet = new SseReader(await resume(alice, messageId));
    for (let i = 0; i < 3; i++) await phone.next();

    const res = await call(alice, "POST", `/messages/${messageId}/stop`);
    expect(res.status).toBe(200);
    const stopped = (await res.json()) as ApiMessage;
    expect(stopped.status).toBe("cancelled");
    expect(stopped.error).toMatchObject({ code: "cancelled" });
    expect((stopped.content as string).length).toBeGreaterThan(0);
    // No usage chunk came: the usage is an estimate, and says so.
    expect(stopped.usage).toMatchObject({ estimated: true });
    expect(stopped.usage!.completion_tokens).toBeGreaterThan(0);

    for (const reader of [phone, tablet]) {
      const rest = await reader.rest();
      expect(rest.at(-1)!.event).toBe("message.failed");
      expect(endMessage(rest.at(-1))).toEqual(stopped);
    }
    const [upstream] = await standInRequests(tag);
    await eventually(async () =>
      (await standInRequests(tag))[0]!.outcome === "client_closed" ? true : null,
    );
    expect(upstream!.tokens_sent ?? 0).toBeLessThan(400);
    const [stored] = await listMessages(alice, conv.id);
    expect(stored).toEqual(stopped);
  });

  it("stopping a finished answer is a harmless no-op that returns it", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi [[stand-in tokens=2]]",
      stream: false,
    });
    const { assistant_message } = (await res.json()) as TurnResult;
    const again = await call(alice, "POST", `/messages/${assistant_message!.id}/stop`);
    expect(again.status).toBe(200);
    expect(await again.json()).toEqual(assistant_message);
  });

  it("another user's answer cannot be stopped", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const conv = await createConversation(alice);
    const reader = await openTurn(alice, conv.id, { content: "hi [[stand-in tokens=20 itl=10]]" });
    const messageId = startedData(await reader.next()).assistant_message.id;
    await expectError(await call(bob, "POST", `/messages/${messageId}/stop`), 404, "not_found");
    const rest = await reader.rest();
    expect(rest.at(-1)!.event).toBe("message.completed");
  });
});

describe("a disconnect is not a stop", () => {
  it("unless the turn asked for cancel_on_disconnect", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const reader = await openTurn(alice, conv.id, {
      content: `long [[stand-in tokens=400 itl=10 tag=${tag}]]`,
      cancel_on_disconnect: true,
    });
    const messageId = startedData(await reader.next()).assistant_message.id;
    await reader.next();
    await reader.cancel();
    const stored = await eventually(async () => {
      const res = await call(alice, "GET", `/messages/${messageId}`);
      const m = (await res.json()) as ApiMessage;
      return m.status !== "streaming" ? m : null;
    });
    expect(stored.status).toBe("cancelled");
    // The stand-in records the outcome when it notices the closed socket, which can come after
    // the answer was stored: wait for the record rather than read it once.
    const outcome = await eventually(async () => (await standInRequests(tag))[0]?.outcome ?? null);
    expect(outcome).toBe("client_closed");
  });
});

describe("stopping before the model's first byte", () => {
  it("aborts the waiting upstream call; the answer is cancelled and its sender is told", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const sending = call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `slow start [[stand-in ttft=5000 tag=${tag}]]`,
    });
    // The answer is stored as streaming before the upstream call: find it as a polling client would.
    const answer = await eventually(async () => {
      const messages = await listMessages(alice, conv.id);
      return messages.find((m) => m.role === "assistant" && m.status === "streaming") ?? null;
    });
    const res = await call(alice, "POST", `/messages/${answer.id}/stop`);
    expect(res.status).toBe(200);
    const stopped = (await res.json()) as ApiMessage;
    expect(stopped).toMatchObject({
      id: answer.id,
      status: "cancelled",
      error: { code: "cancelled" },
      usage: null,
    });
    await expectError(await sending, 409, "conflict");
    await eventually(async () =>
      (await standInRequests(tag))[0]?.outcome === "client_closed" ? true : null,
    );
    expect(
      await dbOf(alice)
        .prepare("SELECT COUNT(*) AS n FROM quota_reservations WHERE user_id = ?")
        .bind(alice)
        .first("n"),
    ).toBe(0);
  });
});
