import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  expectError,
  listMessages,
  newTag,
  newUser,
  readSse,
  standInRequests,
} from "./helpers/api";
import type { TurnResult } from "./helpers/api-types";

describe("retry-safe sends", () => {
  it("a retried send gets the same turn: one user message, one upstream call", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const body = { content: `hi [[stand-in tokens=4 tag=${tag}]]`, client_message_id: "msg-1" };
    const first = await readSse(await call(alice, "POST", `/conversations/${conv.id}/messages`, body));
    const retry = await readSse(await call(alice, "POST", `/conversations/${conv.id}/messages`, body));
    expect(retry.events).toEqual(first.events);
    const plain = await call(alice, "POST", `/conversations/${conv.id}/messages`, { ...body, stream: false });
    expect(plain.status).toBe(200);
    const json = (await plain.json()) as TurnResult;
    expect(json.assistant_message).toEqual(endMessage(first.events.at(-1)));
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it("concurrent duplicates attach to the one live answer", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const body = { content: `hi [[stand-in tokens=10 itl=20 tag=${tag}]]`, client_message_id: "dup-1" };
    const responses = await Promise.all(
      Array.from({ length: 4 }, () => call(alice, "POST", `/conversations/${conv.id}/messages`, body)),
    );
    const streams = await Promise.all(responses.map(readSse));
    for (const s of streams) expect(s.events).toEqual(streams[0]!.events);
    expect(streams[0]!.events.at(-1)!.event).toBe("message.completed");
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it("the Idempotency-Key header works like client_message_id", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tag = newTag();
    const send = () =>
      call(
        alice,
        "POST",
        `/conversations/${conv.id}/messages`,
        { content: `hi [[stand-in tokens=2 tag=${tag}]]`, stream: false },
        { headers: { "idempotency-key": "key-7" } },
      );
    const a = await (await send()).json();
    const b = await (await send()).json();
    expect(b).toEqual(a);
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it("the same id with a different body is 409 conflict, and nothing is stored", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "one [[stand-in tokens=2]]",
        client_message_id: "c-1",
      }),
    );
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "two",
      client_message_id: "c-1",
    });
    await expectError(res, 409, "conflict", "client_message_id");
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
  });

  it("a retry of an older send while another answer is generating still gets its result", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const first = { content: "one [[stand-in tokens=2]]", client_message_id: "old-1", stream: false };
    const stored = (await (
      await call(alice, "POST", `/conversations/${conv.id}/messages`, first)
    ).json()) as TurnResult;
    const busy = call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "two [[stand-in tokens=10 itl=30]]",
    });
    await new Promise((r) => setTimeout(r, 100));
    const retry = await call(alice, "POST", `/conversations/${conv.id}/messages`, first);
    expect(retry.status).toBe(200);
    expect(await retry.json()).toEqual(stored);
    await (await busy).text();
  });
});
