import { describe, expect, it } from "vitest";
import { newId } from "../src/store/ids";
import { objectArguments } from "../src/text/tool-call-arguments";
import {
  call,
  createConversation,
  endMessage,
  expectError,
  listMessages,
  newTag,
  newUser,
  openTurn,
  type SseEvent,
  standInRequests,
  startedData,
  streamTurn,
} from "./helpers/api";
import { dbOf } from "./helpers/shards";
import { TIME_TOOL, WEATHER_TOOL } from "./helpers/tools";

// API.md §2.2: a stored or replayed tool call's `arguments` is always JSON object text. DashScope
// parses the arguments of every tool call in a request's history and answers 400 when one is not
// JSON; the stand-in does the same, so a broken call in the history fails the turn here too.

interface Call {
  id: string;
  function: { name: string; arguments: string };
}

/** Every call's arguments parse as a JSON object. */
function expectObjectArguments(calls: Call[] | null | undefined) {
  for (const c of calls ?? []) {
    const parsed = JSON.parse(c.function.arguments) as unknown;
    expect(parsed).toBeTypeOf("object");
    expect(Array.isArray(parsed)).toBe(false);
  }
}

/** The assistant tool calls a request sent upstream carried in its history. */
const replayedCalls = (request: { body: { messages: { role: string; tool_calls?: Call[] }[] } }) =>
  request.body.messages.flatMap((m) => (m.role === "assistant" ? (m.tool_calls ?? []) : []));

/** The ids of the calls whose fragments were relayed as `message.delta`. */
const relayedCallIds = (events: SseEvent[]) =>
  events
    .filter((e) => e.event === "message.delta")
    .flatMap((e) => (e.data.tool_calls ?? []) as { id?: string }[])
    .map((f) => f.id)
    .filter((id): id is string => typeof id === "string" && id !== "");

describe("a tool call without arguments", () => {
  it('is stored, completed and replayed with "{}" and the conversation goes on', async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { parameters: { tools: [TIME_TOOL] } });
    const tag = newTag();
    const first = await streamTurn(alice, conv.id, {
      content: `What time is it? [[stand-in tool=get_time empty_arguments tag=${tag}]]`,
    });
    const answer = first.events.at(-1)!;
    expect(answer.event).toBe("message.completed");
    expect(endMessage(answer).tool_calls).toEqual([
      { id: expect.any(String), type: "function", function: { name: "get_time", arguments: "{}" } },
    ]);
    const [stored] = await listMessages(alice, conv.id);
    expect(stored!.tool_calls).toEqual(endMessage(answer).tool_calls);

    // The tool result: its request replays the call, and the answer completes.
    const callId = endMessage(answer).tool_calls![0]!.id;
    const result = await streamTurn(alice, conv.id, { role: "tool", tool_call_id: callId, content: "12:00" });
    expect(result.events.at(-1)!.event).toBe("message.completed");
    // And every later turn too.
    const later = await streamTurn(alice, conv.id, { content: `Thanks [[stand-in tokens=2 tag=${tag}]]` });
    expect(later.events.at(-1)!.event).toBe("message.completed");

    const requests = await standInRequests(tag);
    expect(requests).toHaveLength(3);
    for (const request of requests.slice(1)) {
      expect(request.status).toBe(200);
      expect(replayedCalls(request!)).toContainEqual(
        expect.objectContaining({ id: callId, function: { name: "get_time", arguments: "{}" } }),
      );
    }
  });

  it('stored before this rule, is replayed with "{}"', async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    // The exchange as an earlier version stored it: the call's arguments verbatim, "".
    const now = Date.now();
    const [userId, answerId, resultId] = [newId(), newId(), newId()];
    const insert = dbOf(alice).prepare(
      `INSERT INTO messages (id, conversation_id, user_id, parent_id, role, content_json, tool_calls_json,
                             tool_call_id, status, finish_reason, created_at, completed_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?, ?, ?)`,
    );
    await dbOf(alice).batch([
      insert.bind(userId, conv.id, alice, null, "user", '"What time is it?"', null, null, null, now, now),
      insert.bind(
        answerId,
        conv.id,
        alice,
        userId,
        "assistant",
        '""',
        JSON.stringify([{ id: "call_old", type: "function", function: { name: "get_time", arguments: "" } }]),
        null,
        "tool_calls",
        now,
        now,
      ),
      insert.bind(resultId, conv.id, alice, answerId, "tool", '"12:00"', null, "call_old", null, now, now),
    ]);

    const tag = newTag();
    const turn = await streamTurn(alice, conv.id, { content: `And now? [[stand-in tokens=2 tag=${tag}]]` });
    expect(turn.events.at(-1)!.event).toBe("message.completed");
    const [request] = await standInRequests(tag);
    expect(replayedCalls(request!)).toEqual([
      { id: "call_old", type: "function", function: { name: "get_time", arguments: "{}" } },
    ]);
    // And it is returned so, for clients that build their own history from the list.
    const stored = (await listMessages(alice, conv.id)).find((m) => m.id === answerId);
    expect(stored!.tool_calls).toEqual([
      { id: "call_old", type: "function", function: { name: "get_time", arguments: "{}" } },
    ]);
  });
});

describe("a tool call cut off mid-arguments", () => {
  it("by max_tokens is dropped from the answer; the complete one before it stays answerable", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, {
      parameters: { tools: [WEATHER_TOOL, TIME_TOOL], parallel_tool_calls: true },
    });
    const tag = newTag();
    // Each call streams as 3 fragments (one token each): 4 tokens end inside the second call.
    const { events } = await streamTurn(alice, conv.id, {
      content: `Two calls [[stand-in tool_call calls=2 tag=${tag}]]`,
      parameters: { max_tokens: 4 },
    });
    const [firstId, cutId] = relayedCallIds(events);
    expect(firstId).toBeDefined();
    expect(cutId).toBeDefined();
    const answer = endMessage(events.at(-1));
    expect(answer.status).toBe("completed");
    expect(answer.finish_reason).toBe("length");
    expect(answer.tool_calls!.map((c) => c.id)).toEqual([firstId]);
    expectObjectArguments(answer.tool_calls);
    expect((await listMessages(alice, conv.id))[0]).toEqual(answer);

    // The cut call cannot be answered (it is in no history); the complete one can.
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        role: "tool",
        tool_call_id: cutId,
        content: "20°C",
      }),
      400,
      "invalid_request",
      "tool_call_id",
    );
    const result = await streamTurn(alice, conv.id, { role: "tool", tool_call_id: firstId, content: "20°C" });
    expect(result.events.at(-1)!.event).toBe("message.completed");
    const [, request] = await standInRequests(tag);
    expect(request!.status).toBe(200);
    expect(replayedCalls(request!).map((c) => c.id)).toEqual([firstId]);
    expectObjectArguments(replayedCalls(request!));
  });

  it("by a stop is dropped, and a stopped answer's calls cannot be answered", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, {
      parameters: { tools: [WEATHER_TOOL, TIME_TOOL], parallel_tool_calls: true },
    });
    // Four fragments (the first call whole, the second begun), then the model goes quiet.
    const reader = await openTurn(alice, conv.id, {
      content: "Two calls [[stand-in tool_call calls=2 stall=4]]",
    });
    const messageId = startedData(await reader.next()).assistant_message.id;
    const seen: SseEvent[] = [];
    while (relayedCallIds(seen).length < 2) seen.push((await reader.next())!);
    const [firstId, cutId] = relayedCallIds(seen);

    const stopped = (await (await call(alice, "POST", `/messages/${messageId}/stop`)).json()) as {
      status: string;
      tool_calls: Call[] | null;
    };
    await reader.rest();
    expect(stopped.status).toBe("cancelled");
    expect(stopped.tool_calls?.map((c) => c.id)).toEqual([firstId]);
    expectObjectArguments(stopped.tool_calls);

    for (const id of [firstId, cutId]) {
      await expectError(
        await call(alice, "POST", `/conversations/${conv.id}/messages`, {
          role: "tool",
          tool_call_id: id,
          content: "20°C",
        }),
        400,
        "invalid_request",
        "tool_call_id",
      );
    }
    const tag = newTag();
    const next = await streamTurn(alice, conv.id, { content: `Never mind [[stand-in tokens=2 tag=${tag}]]` });
    expect(next.events.at(-1)!.event).toBe("message.completed");
    const [request] = await standInRequests(tag);
    expect(replayedCalls(request!)).toEqual([]);
  });
});

describe("/v1/chat/completions", () => {
  const completion = (userId: string, body: Record<string, unknown>) =>
    call(userId, "POST", "/chat/completions", { model: "qwen-plus", tools: [TIME_TOOL], ...body });

  it('answers a call without arguments with "{}" when not streamed', async () => {
    const res = await completion(newUser("oc"), {
      messages: [
        { role: "user", content: `now? [[stand-in tool=get_time empty_arguments tag=${newTag()}]]` },
      ],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { tool_calls: Call[] } }[] };
    expect(body.choices[0]!.message.tool_calls[0]!.function).toEqual({ name: "get_time", arguments: "{}" });
  });

  it('forwards a history call whose arguments are "" (as a streamed call assembles) with "{}"', async () => {
    const tag = newTag();
    const res = await completion(newUser("oc"), {
      messages: [
        { role: "user", content: `now? [[stand-in tokens=2 tag=${tag}]]` },
        {
          role: "assistant",
          content: null,
          tool_calls: [{ id: "call_1", type: "function", function: { name: "get_time", arguments: "" } }],
        },
        { role: "tool", tool_call_id: "call_1", content: "12:00" },
      ],
    });
    expect(res.status).toBe(200);
    await res.text();
    const [request] = await standInRequests(tag);
    expect(replayedCalls(request!)[0]!.function.arguments).toBe("{}");
  });
});

describe("objectArguments", () => {
  it.each([
    ["", "{}"],
    ["  \n", "{}"],
    ["{}", "{}"],
    ['{"location": "Hangzhou"}', '{"location": "Hangzhou"}'],
    ['{"location": "Hang', null],
    ["[1]", null],
    ["null", null],
    ['"text"', null],
  ])("%j becomes %j", (text, expected) => {
    expect(objectArguments(text)).toBe(expected);
  });
});
