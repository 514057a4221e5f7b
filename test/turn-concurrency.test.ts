import { expect, it } from "vitest";
import {
  call,
  createConversation,
  eventually,
  expectError,
  listMessages,
  newTag,
  newUser,
  readSse,
  standInRequests,
} from "./helpers/api";

it("a second turn while one is generating gets 409 turn_in_progress and stores nothing", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const path = `/conversations/${conv.id}/messages`;
  const first = call(alice, "POST", path, { content: `one [[stand-in tokens=10 itl=50 tag=${tag}]]` });
  const results = await Promise.all([
    first,
    // Sent while the first is in flight.
    new Promise<Response>((r) =>
      setTimeout(() => r(call(alice, "POST", path, { content: `two [[stand-in tag=${tag}]]` })), 100),
    ),
  ]);
  const [ok, conflict] = results;
  await expectError(conflict!, 409, "turn_in_progress");
  const { events } = await readSse(ok!);
  expect(events.at(-1)!.event).toBe("message.completed");
  expect(await standInRequests(tag)).toHaveLength(1);
  const stored = await listMessages(alice, conv.id);
  expect(stored.map((m) => m.content)).not.toContain(`two [[stand-in tag=${tag}]]`);
  expect(stored).toHaveLength(2);
});

it("of many simultaneous turns exactly one runs", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const responses = await Promise.all(
    Array.from({ length: 6 }, (_, i) =>
      call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: `n${i} [[stand-in tokens=3 itl=20 tag=${tag}]]`,
      }),
    ),
  );
  const statuses = responses.map((r) => r.status).sort();
  expect(statuses).toEqual([200, 409, 409, 409, 409, 409]);
  await Promise.all(responses.map((r) => r.text()));
  await eventually(async () => (await listMessages(alice, conv.id)).every((m) => m.status !== "streaming"));
  expect(await listMessages(alice, conv.id)).toHaveLength(2);
  expect(await standInRequests(tag)).toHaveLength(1);
});

it("another user's turn on a busy conversation is 404, not 409", async () => {
  const alice = newUser("alice");
  const mallory = newUser("mallory");
  const conv = await createConversation(alice);
  const busy = call(alice, "POST", `/conversations/${conv.id}/messages`, {
    content: "one [[stand-in tokens=5 itl=50]]",
  });
  await new Promise((r) => setTimeout(r, 100));
  await expectError(
    await call(mallory, "POST", `/conversations/${conv.id}/messages`, { content: "hi" }),
    404,
    "not_found",
  );
  await (await busy).text();
});
