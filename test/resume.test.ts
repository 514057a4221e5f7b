import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  expectError,
  listMessages,
  newUser,
  openTurn,
  readSse,
  resume,
  type SseEvent,
  SseReader,
  startedData,
} from "./helpers/api";
import type { ApiMessage } from "./helpers/api-types";

const contentOf = (events: SseEvent[]) =>
  events
    .filter((e) => e.event === "message.delta")
    .map((e) => e.data.content ?? "")
    .join("");

describe("resuming an answer's stream", () => {
  it("after disconnects at random points, every event arrives exactly once, in order", async () => {
    const alice = newUser("alice");
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 4 }),
        async (cuts) => {
          const conv = await createConversation(alice);
          const first = await openTurn(alice, conv.id, { content: "story [[stand-in tokens=24 itl=8]]" });
          const seen: SseEvent[] = [];
          let reader: SseReader = first;
          for (const cut of cuts) {
            for (let i = 0; i < cut; i++) {
              const e = await reader.next();
              if (!e) break;
              seen.push(e);
            }
            await reader.cancel();
            const messageId = startedData(seen[0]).assistant_message.id;
            reader = new SseReader(await resume(alice, messageId, Number(seen.at(-1)!.id)));
          }
          seen.push(...(await reader.rest()));

          expect(seen.map((e) => Number(e.id))).toEqual(seen.map((_, i) => i + 1));
          expect(seen[0]!.event).toBe("turn.started");
          expect(seen.at(-1)!.event).toBe("message.completed");
          const final = endMessage(seen.at(-1));
          expect(final.content).toBe(contentOf(seen));
          const [stored] = await listMessages(alice, conv.id);
          expect(stored).toEqual(final);
        },
      ),
      { numRuns: 8 },
    );
  });

  it("a finished answer replays what was missed and ends with its terminal event", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const all = (
      await readSse(
        await call(alice, "POST", `/conversations/${conv.id}/messages`, {
          content: "hi [[stand-in tokens=5]]",
        }),
      )
    ).events;
    const messageId = startedData(all[0]).assistant_message.id;

    expect((await readSse(await resume(alice, messageId))).events).toEqual(all);
    expect((await readSse(await resume(alice, messageId, 3))).events).toEqual(all.slice(3));
    const viaQuery = await call(alice, "GET", `/messages/${messageId}/events?after=6`);
    expect((await readSse(viaQuery)).events).toEqual(all.slice(6));
    expect((await readSse(await resume(alice, messageId, all.length))).events).toEqual([]);
  });

  it("a finished answer is resumable from storage after later turns and after its owner restarts", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const turn = async (content: string) =>
      (await readSse(await call(alice, "POST", `/conversations/${conv.id}/messages`, { content }))).events;
    const first = await turn("one [[stand-in tokens=6]]");
    await turn("two [[stand-in tokens=2]]");
    const messageId = startedData(first[0]).assistant_message.id;
    expect((await readSse(await resume(alice, messageId, 2))).events).toEqual(first.slice(2));

    const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
    await runInDurableObject(stub, (_instance, state) => state.abort("restart")).catch(() => {});
    expect((await readSse(await resume(alice, messageId, 4))).events).toEqual(first.slice(4));
    expect((await readSse(await resume(alice, messageId))).events).toEqual(first);
  });

  it("two devices following the same answer both receive every event", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const phone = await openTurn(alice, conv.id, { content: "hi [[stand-in tokens=20 itl=15]]" });
    const started = (await phone.next())!;
    const tablet = new SseReader(await resume(alice, startedData(started).assistant_message.id));
    const [phoneRest, tabletAll] = await Promise.all([phone.rest(), tablet.rest()]);
    const phoneAll = [started, ...phoneRest];
    expect(tabletAll).toEqual(phoneAll);
    expect(phoneAll.at(-1)!.event).toBe("message.completed");
  });

  it("resuming an unknown, foreign or user message is 404", async () => {
    const alice = newUser("alice");
    const bob = newUser("bob");
    const conv = await createConversation(alice);
    const { events } = await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "hi [[stand-in tokens=2]]",
      }),
    );
    const { assistant_message, user_message } = startedData(events[0]);
    await expectError(await resume(bob, assistant_message.id), 404, "not_found");
    await expectError(await resume(alice, crypto.randomUUID()), 404, "not_found");
    await expectError(await resume(alice, user_message.id), 404, "not_found");
    await expectError(
      await call(alice, "GET", `/messages/${assistant_message.id}/events?after=x`),
      400,
      "invalid_request",
      "after",
    );
  });
});

describe("status by id", () => {
  it("shows partial content while streaming, then the stored answer", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const reader = await openTurn(alice, conv.id, { content: "hi [[stand-in tokens=40 itl=25]]" });
    const started = (await reader.next())!;
    const messageId = startedData(started).assistant_message.id;
    const seen: SseEvent[] = [];
    for (let i = 0; i < 5; i++) seen.push((await reader.next())!);
    const polled = (await (await call(alice, "GET", `/messages/${messageId}`)).json()) as ApiMessage;
    expect(polled.status).toBe("streaming");
    expect((polled.content as string).startsWith(contentOf(seen))).toBe(true);
    const rest = await reader.rest();
    const done = (await (await call(alice, "GET", `/messages/${messageId}`)).json()) as ApiMessage;
    expect(done).toEqual(endMessage(rest.at(-1)));
  });
});
