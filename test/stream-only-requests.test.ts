import { describe, expect, inject, it } from "vitest";
import type { ChatCompletion, ChatCompletionChunk, ToolCallFragment } from "../src/dashscope/types";
import type { Message } from "../src/store/types";
import { call, createConversation, eventually, newTag, newUser, standInRequests } from "./helpers/api";
import { dbOf } from "./helpers/shards";
import { EITHER_WAY_KINDS, STREAM_ONLY_KINDS } from "./helpers/stream-only-requests";

// Requests DashScope accepts only with `stream: true` (thinking, QwQ/QVQ/Omni models, audio output;
// PROTOCOL.md §2.6, §4.1), sent to edge-chat without a stream. The stand-in refuses each of them
// non-streamed exactly as DashScope does (test/stand-in.test.ts), so a Worker that forwards them
// as they are gets the 400 back.

type Row = Record<string, unknown>;

/** What the stand-in's request log says about one request. */
interface LoggedRequest {
  stream: boolean;
  include_usage: boolean;
  body: unknown;
}

interface ErrorBody {
  error: { code: string; message: string; param: string | null; type: string };
}

interface ExpectedChoice {
  content: string;
  reasoning: string;
  audio: { id: string | undefined; data: string; expires_at: number | undefined } | null;
  finish: string | null;
}

/** Sends `body` straight to the stand-in: the same bytes the Worker sent give the same answer. */
async function direct(body: unknown): Promise<Response> {
  return fetch(`${inject("standInBaseUrl")}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${inject("standInApiKey")}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** The JSON chunks of an SSE body (without `[DONE]`). */
async function chunksOf(res: Response): Promise<ChatCompletionChunk[]> {
  expect(res.status).toBe(200);
  const text = await res.text();
  expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  return text
    .split("\n\n")
    .map((block) => block.trim())
    .filter((block) => block.startsWith("data: ") && block !== "data: [DONE]")
    .map((block) => JSON.parse(block.slice("data: ".length)) as ChatCompletionChunk);
}

/**
 * The `chat.completion` a non-streamed call returns for the answer in `chunks`, built by plain
 * concatenation per choice (the stand-in's layouts need no more): content, reasoning, audio
 * pieces, the last finish reason, the usage chunk's usage.
 */
function expectedCompletion(chunks: ChatCompletionChunk[]): ChatCompletion {
  const choices = new Map<number, ExpectedChoice>();
  let usage: ChatCompletion["usage"] = null;
  for (const chunk of chunks) {
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      const c: ExpectedChoice = choices.get(choice.index) ?? {
        content: "",
        reasoning: "",
        audio: null,
        finish: null,
      };
      choices.set(choice.index, c);
      const delta = choice.delta ?? {};
      if (typeof delta.content === "string") c.content += delta.content;
      if (typeof delta.reasoning_content === "string") c.reasoning += delta.reasoning_content;
      if (delta.audio) {
        c.audio ??= { id: delta.audio.id, data: "", expires_at: delta.audio.expires_at };
        c.audio.data += delta.audio.data;
      }
      if (choice.finish_reason) c.finish = choice.finish_reason;
    }
  }
  const first = chunks[0]!;
  return {
    id: first.id,
    object: "chat.completion",
    created: first.created,
    model: first.model,
    choices: [...choices.entries()].map(([index, c]) => ({
      index,
      message: {
        role: "assistant",
        content: c.content,
        ...(c.reasoning ? { reasoning_content: c.reasoning } : {}),
        ...(c.audio ? { audio: c.audio } : {}),
      },
      finish_reason: c.finish,
      logprobs: null,
    })),
    usage,
    system_fingerprint: null,
  };
}

/** The one upstream request the Worker made for `tag`. */
async function upstreamRequest(tag: string): Promise<LoggedRequest> {
  const entries = await standInRequests(tag);
  expect(entries).toHaveLength(1);
  return entries[0]!;
}

const records = async (userId: string) =>
  (
    await dbOf(userId)
      .prepare("SELECT * FROM usage_records WHERE user_id = ? ORDER BY created_at")
      .bind(userId)
      .all<Row>()
  ).results;
const reservations = async (userId: string) =>
  (await dbOf(userId).prepare("SELECT * FROM quota_reservations WHERE user_id = ?").bind(userId).all<Row>())
    .results;

/** The user's usage records once every reservation is settled (settling runs after the response). */
async function settledRecords(userId: string, count: number): Promise<Row[]> {
  return eventually(async () => {
    const rows = await records(userId);
    return rows.length === count && (await reservations(userId)).length === 0 ? rows : null;
  });
}

const completion = (userId: string, body: Record<string, unknown>) =>
  call(userId, "POST", "/chat/completions", body);

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};

/** The first choice and the usage of a completion, which every answer here has. */
function firstChoice(body: ChatCompletion) {
  const choice = body.choices[0]!;
  return { choice, message: choice.message, usage: body.usage! };
}

describe("POST /v1/chat/completions without stream, for requests DashScope answers only as a stream", () => {
  it.each(STREAM_ONLY_KINDS)(
    "answers $label with the chat.completion a non-streamed call returns, usage recorded once",
    async (kind) => {
      const alice = newUser("assembled");
      await createConversation(alice); // the user row, for the ledger
      const tag = newTag();
      const res = await completion(alice, {
        ...kind.fields,
        messages: [{ role: "user", content: `hi [[stand-in tokens=3 reasoning=2 audio=2 tag=${tag}]]` }],
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^application\/json/);
      const body = (await res.json()) as ChatCompletion;

      const sent = await upstreamRequest(tag);
      expect(sent.stream).toBe(true);
      expect(sent.include_usage).toBe(true);
      expect(body).toEqual(expectedCompletion(await chunksOf(await direct(sent.body))));
      const { choice, message, usage } = firstChoice(body);
      expect(choice.finish_reason).toBe("stop");
      expect(message.content?.split(" ")).toHaveLength(3);
      expect("reasoning_content" in message).toBe(kind.thinks);
      if (kind.thinks) expect(usage.completion_tokens_details).toEqual({ reasoning_tokens: 2 });

      const [record] = await settledRecords(alice, 1);
      expect(record).toMatchObject({
        conversation_id: null,
        status: "completed",
        model: kind.fields.model,
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        estimated: 0,
      });
    },
  );

  it("has the keys of a non-streamed DashScope answer", async () => {
    const res = await completion(newUser("assembled"), {
      model: "qwen-plus",
      enable_thinking: true,
      messages: [{ role: "user", content: `hi [[stand-in tokens=2 tag=${newTag()}]]` }],
    });
    const assembledBody = (await res.json()) as ChatCompletion;
    const plainBody = (await (
      await direct({ model: "qwen-plus", messages: [{ role: "user", content: "hi [[stand-in tokens=2]]" }] })
    ).json()) as ChatCompletion;
    expect(Object.keys(assembledBody).sort()).toEqual(Object.keys(plainBody).sort());
    const assembled = firstChoice(assembledBody);
    const plain = firstChoice(plainBody);
    expect(Object.keys(assembled.choice).sort()).toEqual(Object.keys(plain.choice).sort());
    expect(Object.keys(assembled.message).sort()).toEqual(
      [...Object.keys(plain.message), "reasoning_content"].sort(),
    );
    expect(Object.keys(assembled.usage).sort()).toEqual(
      [...Object.keys(plain.usage), "completion_tokens_details"].sort(),
    );
  });

  it.each(EITHER_WAY_KINDS)("forwards $label non-streamed, as DashScope answers it", async (kind) => {
    const tag = newTag();
    const res = await completion(newUser("forwarded"), {
      ...kind.fields,
      messages: [{ role: "user", content: `hi [[stand-in tokens=3 tag=${tag}]]` }],
    });
    expect(res.status).toBe(200);
    const body: unknown = await res.json();
    const sent = await upstreamRequest(tag);
    expect(sent.stream).toBe(false);
    expect(body).toEqual(await (await direct(sent.body)).json());
  });

  it("returns complete tool calls after the reasoning, arguments as JSON text", async () => {
    const tag = newTag();
    const res = await completion(newUser("assembled"), {
      model: "qwen-plus",
      enable_thinking: true,
      parallel_tool_calls: true,
      tools: [weatherTool, { ...weatherTool, function: { ...weatherTool.function, name: "get_time" } }],
      messages: [
        { role: "user", content: `weather? [[stand-in tool_call calls=2 fragments=pattern3 tag=${tag}]]` },
      ],
    });
    expect(res.status).toBe(200);
    const { choice, message } = firstChoice((await res.json()) as ChatCompletion);
    expect(choice.finish_reason).toBe("tool_calls");
    expect(message.reasoning_content?.length).toBeGreaterThan(0);
    const calls = message.tool_calls ?? [];
    expect(calls.map((c) => [c.type, c.function.name])).toEqual([
      ["function", "get_weather"],
      ["function", "get_time"],
    ]);
    // The same answer streamed: each call's arguments are its fragments joined.
    const chunks = await chunksOf(await direct((await upstreamRequest(tag)).body));
    const fragments: ToolCallFragment[] = chunks.flatMap((c) =>
      c.choices.flatMap((ch) => ch.delta?.tool_calls ?? []),
    );
    for (const [i, call] of calls.entries()) {
      expect(call.id).toMatch(/^call_[0-9a-f]{22}$/);
      expect(Object.keys(call).sort()).toEqual(["function", "id", "type"]);
      expect(JSON.parse(call.function.arguments)).toHaveProperty("location");
      const joined = fragments
        .filter((f) => f.index === i)
        .map((f) => f.function?.arguments ?? "")
        .join("");
      expect(call.function.arguments).toBe(joined);
    }
  });

  it("returns logprobs when asked, for the content only", async () => {
    const res = await completion(newUser("assembled"), {
      model: "qwen3-32b",
      logprobs: true,
      top_logprobs: 2,
      messages: [{ role: "user", content: `hi [[stand-in tokens=4 reasoning=3 tag=${newTag()}]]` }],
    });
    expect(res.status).toBe(200);
    const { choice, message } = firstChoice((await res.json()) as ChatCompletion);
    expect(message.reasoning_content?.split(" ")).toHaveLength(3);
    const entries = choice.logprobs?.content ?? [];
    expect(entries.map((entry) => entry.token).join("")).toBe(message.content);
    for (const entry of entries) expect(entry.top_logprobs).toHaveLength(2);
  });

  it("refuses n > 1 with thinking before calling upstream, as DashScope allows n only without thinking", async () => {
    const alice = newUser("assembled");
    const tag = newTag();
    const res = await completion(alice, {
      model: "qwen-plus",
      enable_thinking: true,
      n: 2,
      messages: [{ role: "user", content: `hi [[stand-in tag=${tag}]]` }],
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as ErrorBody).error).toMatchObject({ code: "invalid_request", param: "n" });
    expect(await standInRequests(tag)).toEqual([]);
    expect(await records(alice)).toEqual([]);
  });

  it.each([
    ["content moderation of the output", "midstream=openai", 422, "content_filtered"],
    ["a throttling frame", "midstream=native", 429, "rate_limited"],
    ["a dropped connection", "disconnect=2", 502, "upstream_error"],
    // vitest.config.ts sets UPSTREAM_IDLE_TIMEOUT_MS to 2 s.
    ["an upstream that goes quiet", "stall=4", 504, "upstream_timeout"],
  ])(
    "answers %s mid-stream with the mapped error, never a truncated 200, and bills what was received",
    async (_label, fault, status, code) => {
      const alice = newUser("assembled");
      await createConversation(alice);
      const res = await completion(alice, {
        model: "qwen-plus",
        enable_thinking: true,
        messages: [{ role: "user", content: `hi [[stand-in tokens=6 ${fault} tag=${newTag()}]]` }],
      });
      expect(res.status).toBe(status);
      const body = (await res.json()) as ErrorBody;
      expect(Object.keys(body)).toEqual(["error"]);
      expect(body.error).toMatchObject({ code, param: null });
      expect(Object.keys(body.error).sort()).toEqual(["code", "message", "param", "type"]);
      if (status === 429) expect(res.headers.get("retry-after")).toMatch(/^\d+$/);

      const [record] = await settledRecords(alice, 1);
      expect(record).toMatchObject({ status: "failed", estimated: 1 });
      expect(record?.completion_tokens).toBeGreaterThan(0);
    },
  );
});

describe("a conversation turn with stream: false, for requests DashScope answers only as a stream", () => {
  it.each(STREAM_ONLY_KINDS)("answers $label (the turn streams upstream)", async (kind) => {
    const alice = newUser("turn");
    const { model, ...parameters } = kind.fields;
    const conv = await createConversation(alice, { model, parameters });
    const tag = newTag();
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: `hi [[stand-in tokens=3 reasoning=2 tag=${tag}]]`,
      stream: false,
    });
    expect(res.status).toBe(200);
    const answer = ((await res.json()) as { assistant_message: Message }).assistant_message;
    expect(answer.status).toBe("completed");
    expect(answer.content).toEqual(expect.any(String));
    expect(String(answer.content).split(" ")).toHaveLength(3);
    expect(answer.reasoning_content?.split(" ").length ?? 0).toBe(kind.thinks ? 2 : 0);
    expect((await upstreamRequest(tag)).stream).toBe(true);
  });
});
