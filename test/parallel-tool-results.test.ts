import { describe, expect, it } from "vitest";
import type { Message } from "../src/store/types";
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
  startedData,
  streamTurn,
} from "./helpers/api";
import { TIME_TOOL, WEATHER_TOOL } from "./helpers/tools";

// API.md §2.2: `{role: "tool", tool_results: [{tool_call_id, content}, …]}` answers every call of
// an answer with parallel tool calls in one turn; each result is stored as its own `tool`
// message, in the order of the calls, and the history sends the whole exchange on every later
// turn. The stand-in answers `[[stand-in tool_call calls=2]]` with two calls (one per tool, in the
// order of `tools`) when `parallel_tool_calls` is true, and `[[stand-in echo]]` in a tool result
// makes its answer the JSON of the messages it received.

const PARALLEL = { tools: [TIME_TOOL, WEATHER_TOOL], parallel_tool_calls: true };

interface UpstreamMessage {
  role: string;
  content: unknown;
  tool_calls?: { id: string }[];
  tool_call_id?: string;
}

/** A conversation whose latest answer has two parallel tool calls; returns them in call order. */
async function twoCalls(userId: string, tag: string) {
  const conv = await createConversation(userId, { parameters: PARALLEL });
  const { events } = await streamTurn(userId, conv.id, {
    content: `Time and weather? [[stand-in tool_call calls=2 tag=${tag}]]`,
  });
  const answer = events.at(-1)!;
  expect(answer.event).toBe("message.completed");
  const calls = endMessage(answer).tool_calls as { id: string; function: { name: string } }[];
  expect(calls.map((c) => c.function.name)).toEqual(["get_time", "get_weather"]);
  return { conv, answer: endMessage(answer) as Message, ids: calls.map((c) => c.id) };
}

/** The messages DashScope received in the request of `tag` made `back` requests ago (0: the latest). */
async function upstreamMessages(tag: string, back = 0): Promise<UpstreamMessage[]> {
  const requests = await standInRequests(tag);
  return requests.at(-1 - back)!.body.messages as UpstreamMessage[];
}

/** The assistant message with the two calls and its two results, as DashScope must receive them. */
const wholeExchange = (ids: string[], contents: string[]) => [
  expect.objectContaining({
    role: "assistant",
    tool_calls: [expect.objectContaining({ id: ids[0] }), expect.objectContaining({ id: ids[1] })],
  }),
  { role: "tool", content: contents[0], tool_call_id: ids[0] },
  { role: "tool", content: contents[1], tool_call_id: ids[1] },
];

/** The index of the exchange (the assistant message calling `ids[0]`) in an upstream request. */
const exchangeAt = (messages: UpstreamMessage[], ids: string[]) =>
  messages.findIndex((m) => m.role === "assistant" && m.tool_calls?.[0]?.id === ids[0]);

describe("answering parallel tool calls", () => {
  it("tool_results answers both calls in one turn, and the model gets both results after the calls", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, answer, ids } = await twoCalls(alice, tag);
    const contents = ["12:00", "22°C, sunny [[stand-in echo]]"];

    const { events } = await streamTurn(alice, conv.id, {
      role: "tool",
      tool_results: [
        { tool_call_id: ids[0], content: contents[0] },
        { tool_call_id: ids[1], content: contents[1] },
      ],
    });
    const started = events[0]!;
    expect(started.event).toBe("turn.started");
    const toolMessages = startedData(started).tool_messages as Message[];
    expect(toolMessages.map((m) => [m.role, m.tool_call_id, m.content])).toEqual([
      ["tool", ids[0], contents[0]],
      ["tool", ids[1], contents[1]],
    ]);
    expect(startedData(started).user_message).toEqual(toolMessages[1]);
    expect(toolMessages[0]!.id < toolMessages[1]!.id).toBe(true);
    const done = events.at(-1)!;
    expect(done.event).toBe("message.completed");
    // A tool-result turn gets a text answer: here the JSON of what the model received.
    expect(endMessage(done).tool_calls).toBeNull();
    const echoed = JSON.parse(endMessage(done).content as string) as { role: string; content: string }[];
    expect(echoed.slice(-3)).toEqual([
      { role: "assistant", content: "" },
      { role: "tool", content: contents[0] },
      { role: "tool", content: contents[1] },
    ]);

    const sent = await upstreamMessages(tag);
    expect(sent.slice(-3)).toEqual(wholeExchange(ids, contents));

    // Stored in call order, after the answer with the calls, before the new answer.
    const stored = (await listMessages(alice, conv.id)).reverse();
    expect(stored.map((m) => [m.role, m.tool_call_id])).toEqual([
      ["user", null],
      ["assistant", null],
      ["tool", ids[0]],
      ["tool", ids[1]],
      ["assistant", null],
    ]);
    expect(stored[1]!.id).toBe(answer.id);
    expect(stored.slice(2, 4)).toEqual(toolMessages);
  });

  it("the history keeps the whole exchange on the next user turn", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, ids } = await twoCalls(alice, tag);
    const contents = ["12:00", "22°C"];
    await streamTurn(alice, conv.id, {
      role: "tool",
      tool_results: [
        { tool_call_id: ids[0], content: contents[0] },
        { tool_call_id: ids[1], content: contents[1] },
      ],
    });
    const next = await streamTurn(alice, conv.id, { content: `And tomorrow? [[stand-in echo tag=${tag}]]` });
    expect(next.events.at(-1)!.event).toBe("message.completed");

    const sent = await upstreamMessages(tag);
    const at = exchangeAt(sent, ids);
    expect(at).toBeGreaterThan(0);
    expect(sent[at - 1]).toMatchObject({ role: "user" });
    expect(sent.slice(at, at + 3)).toEqual(wholeExchange(ids, contents));
    expect(sent[at + 3]).toMatchObject({ role: "assistant" });
    expect(sent.at(-1)).toEqual({ role: "user", content: `And tomorrow? [[stand-in echo tag=${tag}]]` });
    expect(sent).toHaveLength(at + 5);
  });

  it("results in another order than the calls are accepted and stored in call order", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, ids } = await twoCalls(alice, tag);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      role: "tool",
      tool_results: [
        { tool_call_id: ids[1], content: "22°C" },
        { tool_call_id: ids[0], content: "12:00" },
      ],
      stream: false,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      user_message: Message;
      tool_messages: Message[];
      assistant_message: Message;
    };
    expect(body.tool_messages.map((m) => [m.tool_call_id, m.content])).toEqual([
      [ids[0], "12:00"],
      [ids[1], "22°C"],
    ]);
    expect(body.user_message).toEqual(body.tool_messages[1]);
    expect(body.assistant_message.status).toBe("completed");
    const stored = (await listMessages(alice, conv.id)).reverse();
    expect(stored.slice(2, 4)).toEqual(body.tool_messages);
    expect(stored[4]!.parent_id).toBe(body.tool_messages[1]!.id);
    expect((await upstreamMessages(tag)).slice(-3)).toEqual(wholeExchange(ids, ["12:00", "22°C"]));
  });

  it("a single result for an answer with two calls is a 400 naming the unanswered call, and stores nothing", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, ids } = await twoCalls(alice, tag);
    for (const [answered, unanswered] of [
      [ids[0]!, ids[1]!],
      [ids[1]!, ids[0]!],
    ]) {
      const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        role: "tool",
        tool_call_id: answered,
        content: "12:00",
      });
      const error = await expectError(res, 400, "invalid_request", "tool_results");
      expect(error.message).toContain(unanswered);
      expect(error.message).not.toContain(answered);
    }
    // tool_results that leave a call out are the same 400.
    const partial = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      role: "tool",
      tool_results: [{ tool_call_id: ids[1], content: "22°C" }],
    });
    expect((await expectError(partial, 400, "invalid_request", "tool_results")).message).toContain(ids[0]);
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it("a result for a call the answer did not make is a 400 naming it, and stores nothing", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, ids } = await twoCalls(alice, tag);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      role: "tool",
      tool_results: [
        { tool_call_id: ids[0], content: "12:00" },
        { tool_call_id: "call_nope", content: "22°C" },
      ],
    });
    const error = await expectError(res, 400, "invalid_request", "tool_results.1.tool_call_id");
    expect(error.message).toContain("call_nope");
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it.each([
    ["an empty list", { tool_results: [] }, "tool_results"],
    [
      "the same call twice",
      {
        tool_results: [
          { tool_call_id: "CALL0", content: "12:00" },
          { tool_call_id: "CALL0", content: "13:00" },
        ],
      },
      "tool_results.1.tool_call_id",
    ],
    [
      "both tool_call_id and tool_results",
      { tool_call_id: "CALL0", content: "12:00", tool_results: [{ tool_call_id: "CALL1", content: "22°C" }] },
      "tool_results",
    ],
    [
      "content beside tool_results",
      { content: "12:00", tool_results: [{ tool_call_id: "CALL0", content: "x" }] },
      "content",
    ],
    [
      "a result without tool_call_id",
      { tool_results: [{ content: "12:00" }] },
      "tool_results.0.tool_call_id",
    ],
    ["a result without content", { tool_results: [{ tool_call_id: "CALL0" }] }, "tool_results.0.content"],
    [
      "image content in a result",
      {
        tool_results: [
          {
            tool_call_id: "CALL0",
            content: [{ type: "image_url", image_url: { url: "https://example.com/a.png" } }],
          },
        ],
      },
      "tool_results.0.content.0.type",
    ],
  ])("%s is a 400 naming the field, and stores nothing", async (_name, body, param) => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, ids } = await twoCalls(alice, tag);
    const withIds = JSON.parse(
      JSON.stringify(body).replaceAll("CALL0", ids[0]!).replaceAll("CALL1", ids[1]!),
    );
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, { role: "tool", ...withIds });
    await expectError(res, 400, "invalid_request", param);
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
    expect(await standInRequests(tag)).toHaveLength(1);
  });

  it("tool_results is only for role tool", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, ids } = await twoCalls(alice, tag);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi",
      tool_results: [{ tool_call_id: ids[0], content: "12:00" }],
    });
    await expectError(res, 400, "invalid_request", "tool_results");
    expect(await listMessages(alice, conv.id)).toHaveLength(2);
  });

  it("a retried tool_results send is the same turn, and another body under its id is a conflict", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const { conv, ids } = await twoCalls(alice, tag);
    const body = {
      role: "tool",
      tool_results: [
        { tool_call_id: ids[0], content: "12:00" },
        { tool_call_id: ids[1], content: "22°C" },
      ],
      client_message_id: "results-1",
    };
    const first = await readSse(await call(alice, "POST", `/conversations/${conv.id}/messages`, body));
    expect(first.events.at(-1)!.event).toBe("message.completed");
    const retry = await readSse(await call(alice, "POST", `/conversations/${conv.id}/messages`, body));
    expect(retry.events).toEqual(first.events);

    const plain = await call(alice, "POST", `/conversations/${conv.id}/messages`, { ...body, stream: false });
    expect(plain.status).toBe(200);
    const json = (await plain.json()) as {
      user_message: Message;
      tool_messages: Message[];
      assistant_message: Message;
    };
    expect(json.tool_messages).toEqual(startedData(first.events[0]).tool_messages);
    expect(json.user_message).toEqual(startedData(first.events[0]).user_message);
    expect(json.assistant_message).toEqual(endMessage(first.events.at(-1)));

    // The fingerprint covers the results: the same id with another result is not a retry.
    const changed = {
      ...body,
      tool_results: [body.tool_results[0], { tool_call_id: ids[1], content: "23°C" }],
    };
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, changed),
      409,
      "conflict",
      "client_message_id",
    );
    expect(await listMessages(alice, conv.id)).toHaveLength(5);
    expect(await standInRequests(tag)).toHaveLength(2);
  });

  it("a single call is still answered with tool_call_id, and turn.started lists its one tool message", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const conv = await createConversation(alice, { parameters: { tools: [TIME_TOOL] } });
    const first = await streamTurn(alice, conv.id, { content: `Time? [[stand-in tool_call tag=${tag}]]` });
    const [only] = endMessage(first.events.at(-1)).tool_calls as { id: string }[];
    const { events } = await streamTurn(alice, conv.id, {
      role: "tool",
      tool_call_id: only!.id,
      content: "12:00",
    });
    expect(events.at(-1)!.event).toBe("message.completed");
    expect(startedData(events[0]).tool_messages).toEqual([startedData(events[0]).user_message]);
    expect(startedData(events[0]).user_message).toMatchObject({
      role: "tool",
      tool_call_id: only!.id,
      content: "12:00",
    });
  });
});
