import { expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  listMessages,
  newTag,
  newUser,
  readSse,
  standInRequests,
} from "./helpers/api";

/** A response's status and JSON body (the body is read). */
async function outcome(res: Response): Promise<{ status: number; body: unknown }> {
  return { status: res.status, body: await res.json() };
}

it("another user's concurrent sends at your conversation get only the 404 of an id with no conversation", async () => {
  const alice = newUser("alice");
  const bob = newUser("bob");
  const conv = await createConversation(alice);
  const tag = newTag();
  const send = (id: string) =>
    call(bob, "POST", `/conversations/${id}/messages`, { content: `hi [[stand-in tag=${tag}]]` });
  // Six at once, at a conversation whose object has not seen a turn yet and at an unused id.
  const [atAlice, atNothing] = await Promise.all([
    Promise.all(Array.from({ length: 6 }, () => send(conv.id).then(outcome))),
    Promise.all(Array.from({ length: 6 }, () => send(crypto.randomUUID()).then(outcome))),
  ]);
  expect(atNothing.map((o) => o.status)).toEqual(Array(6).fill(404));
  expect(atAlice).toEqual(atNothing);
  expect(await standInRequests(tag)).toHaveLength(0);
  expect(await listMessages(alice, conv.id)).toHaveLength(0);
});

it("another user's sends, stops and event reads interleaved with your turns change none of them", async () => {
  const alice = newUser("alice");
  const bob = newUser("bob");
  const conv = await createConversation(alice);
  const bobTag = newTag();
  const path = `/conversations/${conv.id}/messages`;
  // What Bob gets for ids that hold nothing: every answer he gets below must be one of these.
  const nothing = await outcome(
    await call(bob, "POST", `/conversations/${crypto.randomUUID()}/messages`, { content: "x" }),
  );
  const noMessage = await outcome(await call(bob, "POST", `/messages/${crypto.randomUUID()}/stop`));
  expect(nothing.status).toBe(404);
  expect(noMessage.status).toBe(404);

  const turns = 20;
  const aliceAnswers: string[] = [];
  const aliceStatuses: number[] = [];
  let aliceDone = false;
  const aliceTurns = async () => {
    try {
      for (let i = 0; i < turns; i++) {
        const body = { content: `a${i} [[stand-in tokens=2]]`, stream: i % 2 === 0 };
        const res = await call(alice, "POST", path, body);
        aliceStatuses.push(res.status);
        if (res.status !== 200) {
          await res.text();
          continue;
        }
        if (body.stream) {
          const { events } = await readSse(res);
          const last = endMessage(events.at(-1));
          if (last.status === "completed") aliceAnswers.push(last.id);
        } else {
          const json = (await res.json()) as { assistant_message: { id: string; status: string } };
          if (json.assistant_message.status === "completed") aliceAnswers.push(json.assistant_message.id);
        }
      }
    } finally {
      aliceDone = true;
    }
  };
  const bobAnswers: { kind: string; status: number; body: unknown }[] = [];
  const bobActs = async (offset: number) => {
    for (let i = offset; !aliceDone; i++) {
      const target = aliceAnswers.at(-1) ?? crypto.randomUUID();
      // Bob's own rate limit (60 a minute, the suite's config) would answer 429: keep below it.
      const sends = bobAnswers.filter((x) => x.kind.startsWith("send")).length;
      const kind = ["send", "send-json", "stop", "events"][
        (sends >= 40 ? 2 : 0) + (i % (sends >= 40 ? 2 : 4))
      ]!;
      const res =
        kind === "send"
          ? await call(bob, "POST", path, { content: `b${i} [[stand-in tag=${bobTag}]]` })
          : kind === "send-json"
            ? await call(bob, "POST", path, { content: `b${i} [[stand-in tag=${bobTag}]]`, stream: false })
            : kind === "stop"
              ? await call(bob, "POST", `/messages/${target}/stop`)
              : await call(bob, "GET", `/messages/${target}/events`);
      bobAnswers.push({ kind, ...(await outcome(res)) });
    }
  };
  await Promise.all([aliceTurns(), bobActs(0), bobActs(1), bobActs(2)]);

  expect(aliceStatuses).toEqual(Array(turns).fill(200));
  expect(aliceAnswers).toHaveLength(turns);
  expect(bobAnswers.length).toBeGreaterThan(turns);
  for (const a of bobAnswers) {
    const { kind: _, ...got } = a;
    expect(got).toEqual(a.kind.startsWith("send") ? nothing : noMessage);
  }
  expect(await standInRequests(bobTag)).toHaveLength(0);
  const stored = await listMessages(alice, conv.id);
  expect(stored).toHaveLength(2 * turns);
  expect(stored.every((m) => m.status === "completed")).toBe(true);
});
