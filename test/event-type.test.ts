import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AnswerLog } from "../src/generation/answer-log";
import { eventDataJson, withEventType } from "../src/generation/event-data";
import {
  call,
  createConversation,
  endMessage,
  newTag,
  newUser,
  openTurn,
  readSse,
  resume,
  type SseEvent,
  startedData,
} from "./helpers/api";
import { WEATHER_TOOL } from "./helpers/tools";

/**
 * Asserts that every event's data names its event as its first key, `type` (API.md §2.1), and
 * returns the events' names in order.
 */
function expectTyped(events: readonly SseEvent[]): string[] {
  for (const e of events) {
    expect(Object.keys(e.data)[0], `first key of ${e.event} ${e.id}`).toBe("type");
    expect(e.data.type, `type of ${e.event} ${e.id}`).toBe(e.event);
  }
  return events.map((e) => e.event);
}

const deltas = (events: readonly SseEvent[]) =>
  events.flatMap((e) => (e.event === "message.delta" ? [e.data] : []));

/** The stub of a conversation's Durable Object. */
const conversationObject = (conversationId: string) =>
  env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));

describe("every event's data carries type, its event's name", () => {
  it("a tool round trip with reasoning, tool-call fragments and content, live and resumed", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { parameters: { tools: [WEATHER_TOOL] } });
    const tag = newTag();
    // The stand-in answers a tool call without content (reasoning first when thinking), and the
    // tool results with reasoning and content: the two answers carry every kind of delta.
    const call1 = await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: `weather in Hangzhou? [[stand-in thinking tool_call reasoning=3 tag=${tag}]]`,
      }),
    );
    const calls = endMessage(call1.events.at(-1)).tool_calls as { id: string }[];
    expect(calls).toHaveLength(1);
    const answer = await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        role: "tool",
        tool_results: [{ tool_call_id: calls[0]!.id, content: "18°C" }],
      }),
    );
    expect(startedData(answer.events[0]).tool_messages).toHaveLength(1);

    const events = [...call1.events, ...answer.events];
    const names = expectTyped(events);
    expect(names.filter((n) => n === "turn.started")).toHaveLength(2);
    expect(names.filter((n) => n === "message.completed")).toHaveLength(2);
    const all = deltas(events);
    expect(all.some((d) => d.reasoning_content)).toBe(true);
    expect(all.some((d) => d.content)).toBe(true);
    expect(all.some((d) => d.tool_calls?.length)).toBe(true);

    // Replayed from the answer log (the first answer is no longer the object's latest) and from
    // the latest answer's events in memory: the same events, byte for byte the same data.
    const firstId = startedData(call1.events[0]).assistant_message.id;
    const secondId = startedData(answer.events[0]).assistant_message.id;
    expect((await readSse(await resume(alice, firstId))).events).toEqual(call1.events);
    expect((await readSse(await resume(alice, secondId, 1))).events).toEqual(answer.events.slice(1));
  });

  it("a stopped answer: live, resumed mid-answer, and replayed", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const phone = await openTurn(alice, conv.id, { content: "long [[stand-in tokens=400 itl=10]]" });
    const started = (await phone.next())!;
    const messageId = startedData(started).assistant_message.id;
    const head = [started, (await phone.next())!, (await phone.next())!];
    // A second device joins mid-answer: what it missed, then the live tail.
    const tablet = await resume(alice, messageId, 1);

    expect((await call(alice, "POST", `/messages/${messageId}/stop`)).status).toBe(200);
    const events = [...head, ...(await phone.rest())];
    expect(expectTyped(events).at(-1)).toBe("message.failed");
    expect(endMessage(events.at(-1)).status).toBe("cancelled");
    const joined = (await readSse(tablet)).events;
    expectTyped(joined);
    expect(joined).toEqual(events.slice(1));
  });

  it("an answer that fails mid-stream ends with a typed message.failed", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const { events } = await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "x [[stand-in tokens=10 midstream=openai after=3]]",
      }),
    );
    const names = expectTyped(events);
    expect(names[0]).toBe("turn.started");
    expect(names.filter((n) => n === "message.delta").length).toBeGreaterThan(0);
    expect(names.at(-1)).toBe("message.failed");
    expect(endMessage(events.at(-1)).error).toMatchObject({ code: "content_filtered" });
  });

  it("a late resume, after the events were collected, gets a typed terminal event", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const first = (
      await readSse(
        await call(alice, "POST", `/conversations/${conv.id}/messages`, {
          content: "hi [[stand-in tokens=3]]",
        }),
      )
    ).events;
    await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "next [[stand-in tokens=1]]",
      }),
    );
    const messageId = startedData(first[0]).assistant_message.id;
    await runInDurableObject(conversationObject(conv.id), (_instance, state) => {
      // As if a day had passed: everything finished before "now + 1 ms" is past retention.
      new AnswerLog(state.storage, (err) => {
        throw err;
      }).collect(Date.now() + 1, 86_400_000);
    });
    const late = (await readSse(await resume(alice, messageId))).events;
    expect(expectTyped(late)).toEqual(["message.completed"]);
    // The same event, its d1_bookmark that of the read that rebuilt it (at least as new).
    const original = first.at(-1)!;
    expect(late).toEqual([{ ...original, data: { ...original.data, d1_bookmark: expect.any(String) } }]);
    const bookmarkOf = (event: (typeof late)[number]) =>
      (event.data as { d1_bookmark?: string }).d1_bookmark!;
    expect(bookmarkOf(late[0]!) >= bookmarkOf(original)).toBe(true);
  });

  it("events logged before data carried type gain it on replay, the rest unchanged", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const first = (
      await readSse(
        await call(alice, "POST", `/conversations/${conv.id}/messages`, {
          content: "hi [[stand-in tokens=4]]",
        }),
      )
    ).events;
    await readSse(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content: "next [[stand-in tokens=1]]",
      }),
    );
    const messageId = startedData(first[0]).assistant_message.id;
    // Rewrite the stored events as they were logged before: the same data without its `type`.
    const rewritten = await runInDurableObject(conversationObject(conv.id), (_instance, state) => {
      const sql = state.storage.sql;
      const rows = sql
        .exec("SELECT first_seq, sse FROM answer_events WHERE message_id = ?", messageId)
        .toArray() as { first_seq: number; sse: string }[];
      let removed = 0;
      for (const { first_seq, sse } of rows) {
        const old = sse.replace(/^data: \{"type":"[a-z.]+",/gm, () => {
          removed++;
          return "data: {";
        });
        sql.exec(
          "UPDATE answer_events SET sse = ? WHERE message_id = ? AND first_seq = ?",
          old,
          messageId,
          first_seq,
        );
      }
      return removed;
    });
    expect(rewritten).toBe(first.length);

    const replayed = (await readSse(await resume(alice, messageId))).events;
    expectTyped(replayed);
    expect(replayed).toEqual(first);
  });
});

describe("event data", () => {
  it("puts type first, then the payload's keys in their order", () => {
    expect(eventDataJson("message.delta", { message_id: "m", content: "hi" })).toBe(
      '{"type":"message.delta","message_id":"m","content":"hi"}',
    );
  });

  it("adds type to stored data only where it is missing, and leaves what it cannot read alone", () => {
    expect(withEventType("message.failed", '{"message":{"id":"m"}}')).toBe(
      '{"type":"message.failed","message":{"id":"m"}}',
    );
    const typed = '{"type":"message.delta","message_id":"m"}';
    expect(withEventType("message.delta", typed)).toBe(typed);
    for (const [event, data] of [
      ["message", '{"a":1}'],
      ["message.delta", "[DONE]"],
      ["message.delta", "[1]"],
      ["message.delta", '{"a":1,"type":"x"}'],
    ] as const) {
      expect(withEventType(event, data), `${event} ${data}`).toBe(data);
    }
  });
});
