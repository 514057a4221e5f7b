import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  listMessages,
  newTag,
  newUser,
  type SseEvent,
  standInRequests,
  startedData,
  streamTurn,
} from "./helpers/api";
import type { TurnResult } from "./helpers/api-types";

const names = (events: SseEvent[]) => events.map((e) => e.event);
const deltas = (events: SseEvent[]) => events.filter((e) => e.event === "message.delta").map((e) => e.data);

/** The SSE contract of `../shared/API.md`: ids 1..n, turn.started first, exactly one terminal event last. */
function expectContract(events: SseEvent[], terminal: "message.completed" | "message.failed") {
  expect(events.map((e) => Number(e.id))).toEqual(events.map((_, i) => i + 1));
  expect(events[0]!.event).toBe("turn.started");
  expect(events.at(-1)!.event).toBe(terminal);
  expect(names(events).filter((n) => n === "message.completed" || n === "message.failed")).toHaveLength(1);
  const messageId = startedData(events[0]).assistant_message.id;
  for (const d of deltas(events)) expect(d.message_id).toBe(messageId);
}

describe("a streamed turn", () => {
  it("relays turn.started, deltas and message.completed, and stores the answer with usage", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { title: "t" });
    const tag = newTag();
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `Hello [[stand-in tokens=5 tag=${tag}]]`,
    });
    expect(res.headers.get("cache-control")).toBe("no-cache, no-transform");
    const { events } = await (await import("./helpers/api")).readSse(res);

    expectContract(events, "message.completed");
    expect(names(events)).toEqual(["turn.started", ...Array(5).fill("message.delta"), "message.completed"]);
    const started = startedData(events[0]);
    expect(started.user_message.role).toBe("user");
    expect(started.user_message.content).toBe(`Hello [[stand-in tokens=5 tag=${tag}]]`);
    expect(started.assistant_message.status).toBe("streaming");
    const text = deltas(events)
      .map((d) => d.content)
      .join("");
    const final = endMessage(events.at(-1));
    expect(final.status).toBe("completed");
    expect(final.content).toBe(text);
    expect(final.finish_reason).toBe("stop");
    expect(final.usage!.completion_tokens).toBe(5);
    expect(final.usage!.total_tokens).toBe(final.usage!.prompt_tokens + 5);

    const stored = await listMessages(alice, conv.id);
    expect(stored.map((m) => m.role)).toEqual(["assistant", "user"]);
    expect(stored[0]).toEqual(final);
    expect(stored[0]!.parent_id).toBe(stored[1]!.id);
    const upstream = await standInRequests(tag);
    expect(upstream).toHaveLength(1);
    expect(upstream[0]!.body.stream_options).toEqual({ include_usage: true });
    expect(upstream[0]!.body.messages[0]).toEqual({
      role: "system",
      content: "You are a helpful assistant.",
    });
  });

  it("streams reasoning before content and stores both with reasoning tokens", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const { events } = await streamTurn(alice, conv.id, {
      content: "Think first [[stand-in tokens=4 reasoning=6]]",
      parameters: { enable_thinking: true },
    });
    expectContract(events, "message.completed");
    const ds = deltas(events);
    const firstContent = ds.findIndex((d) => d.content !== undefined);
    expect(ds.slice(0, firstContent).every((d) => typeof d.reasoning_content === "string")).toBe(true);
    expect(firstContent).toBe(6);
    const final = endMessage(events.at(-1));
    expect(final.reasoning_content).toBe(ds.map((d) => d.reasoning_content ?? "").join(""));
    expect(final.content).toBe(ds.map((d) => d.content ?? "").join(""));
    expect(final.usage!.reasoning_tokens).toBe(6);
    expect((await listMessages(alice, conv.id))[0]!.reasoning_content).toBe(final.reasoning_content);
  });

  it("relays tool-call fragments and stores the assembled call", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const tools = [
      {
        type: "function",
        function: {
          name: "get_weather",
          description: "Weather of a city",
          parameters: {
            type: "object",
            properties: { location: { type: "string" } },
            required: ["location"],
          },
        },
      },
    ];
    const { events } = await streamTurn(alice, conv.id, {
      content: "Weather in Hangzhou? [[stand-in tool_call fragments=pattern3]]",
      parameters: { tools },
    });
    expectContract(events, "message.completed");
    const fragments = deltas(events).flatMap((d) => d.tool_calls ?? []);
    expect(fragments.length).toBeGreaterThan(1);
    expect(fragments.every((f) => f.index === 0)).toBe(true);
    const final = endMessage(events.at(-1));
    expect(final.finish_reason).toBe("tool_calls");
    expect(final.tool_calls).toHaveLength(1);
    expect(final.tool_calls![0]!.function.name).toBe("get_weather");
    expect(final.tool_calls![0]!.function.arguments).toBe(
      fragments.map((f) => f.function?.arguments ?? "").join(""),
    );
    expect(JSON.parse(final.tool_calls![0]!.function.arguments)).toHaveProperty("location");
  });

  it("sends : ping comments while the model is slow", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    // The test configuration pings every 300 ms; the model pauses 0.8 s between chunks.
    const { events, comments } = await streamTurn(alice, conv.id, {
      content: "slow [[stand-in tokens=1 itl=800]]",
    });
    expectContract(events, "message.completed");
    expect(comments.filter((c) => c === "ping").length).toBeGreaterThanOrEqual(2);
  });

  it("answers stream:false with the stored user and assistant messages", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "Hi [[stand-in tokens=3]]",
      stream: false,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as TurnResult;
    expect(body.user_message.content).toBe("Hi [[stand-in tokens=3]]");
    expect(body.assistant_message!.status).toBe("completed");
    expect(body.assistant_message!.usage!.completion_tokens).toBe(3);
    const stored = await listMessages(alice, conv.id);
    expect(stored).toEqual([body.assistant_message, body.user_message]);
  });

  it("remembers earlier turns: the second request carries the first exchange", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { system_prompt: "Be brief." });
    const first = await streamTurn(alice, conv.id, { content: "My name is Ada. [[stand-in tokens=3]]" });
    const firstAnswer = endMessage(first.events.at(-1)).content;
    const tag = newTag();
    await streamTurn(alice, conv.id, { content: `What is my name? [[stand-in echo tag=${tag}]]` });
    const [req] = await standInRequests(tag);
    expect(req!.body.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "My name is Ada. [[stand-in tokens=3]]" },
      { role: "assistant", content: firstAnswer },
      { role: "user", content: `What is my name? [[stand-in echo tag=${tag}]]` },
    ]);
    const stored = await listMessages(alice, conv.id);
    expect(stored).toHaveLength(4);
    expect(stored[0]!.content).toContain("My name is Ada.");
  });
});
