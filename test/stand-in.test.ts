import { connect } from "cloudflare:sockets";
import { describe, expect, inject, it } from "vitest";
import type { ChatCompletion, ChatCompletionChunk } from "../src/dashscope/types";
import { EITHER_WAY_KINDS, STREAM_ONLY_KINDS } from "./helpers/stream-only-requests";

// Wire-level checks of the DashScope stand-in (tools/dashscope-stand-in/), talking to it over real HTTP
// from inside workerd, exactly as the Worker does.

const BASE_URL = inject("standInBaseUrl");
const API_KEY = inject("standInApiKey");
const CONTROL_URL = inject("standInControlUrl");
const CHAT_URL = `${BASE_URL}/chat/completions`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CHUNK_KEYS = ["choices", "object", "usage", "created", "system_fingerprint", "model", "id"];
const POLL_INTERVAL_MS = 20;
const POLL_LIMIT_MS = 5_000;

/** DashScope's error envelope as the stand-in sends it, with its request id (and `id` on content errors). */
interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string };
  request_id?: string;
  id?: string;
}
/** What the stand-in recorded of one image part (tools/dashscope-stand-in/image-parts.mjs). */
type ImagePart = { message: number; part: number } & (
  | { kind: "data_url"; media_type: string; bytes: number; sha256: string }
  | { kind: "url"; url: string; media_type: null; bytes: null; sha256: null }
);
interface SseEvent {
  id?: string;
  event?: string;
  comments: string[];
  data: string;
}
interface LogEntry {
  seq: number;
  tag: string | null;
  model: string | null;
  stream: boolean;
  include_usage: boolean;
  body: Record<string, unknown> | null;
  images: ImagePart[];
  authorized: boolean;
  attempt: number;
  status: number | null;
  outcome: string | null;
  started_at: number;
  ended_at: number | null;
  tokens_sent: number;
}

/** A tag unique to this test run, so parallel test files never see each other's requests. */
function uniqueTag(name: string): string {
  return `${name}-${crypto.randomUUID()}`;
}

/** Minimal SSE parser: events are separated by blank lines; `data:` with or without a space. */
function parseSse(text: string): SseEvent[] {
  return text
    .split("\n\n")
    .filter((block) => block.trim() !== "")
    .map((block) => {
      const event: SseEvent = { comments: [], data: "" };
      const data: string[] = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) {
          event.comments.push(line.slice(1));
          continue;
        }
        const colon = line.indexOf(":");
        const field = colon === -1 ? line : line.slice(0, colon);
        let value = colon === -1 ? "" : line.slice(colon + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "data") data.push(value);
        else if (field === "id") event.id = value;
        else if (field === "event") event.event = value;
      }
      event.data = data.join("\n");
      return event;
    });
}

/** The JSON chunks of a stream (everything except `[DONE]`). */
function chunksOf(text: string): ChatCompletionChunk[] {
  return parseSse(text)
    .filter((e) => e.data !== "[DONE]")
    .map((e) => JSON.parse(e.data) as ChatCompletionChunk);
}

function userMessage(text: string): { role: "user"; content: string }[] {
  return [{ role: "user", content: text }];
}

async function post(
  body: unknown,
  init: { key?: string | null; signal?: AbortSignal; raw?: string } = {},
): Promise<Response> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  const key = init.key === undefined ? API_KEY : init.key;
  if (key !== null) headers.authorization = `Bearer ${key}`;
  return fetch(CHAT_URL, {
    method: "POST",
    headers,
    body: init.raw ?? JSON.stringify(body),
    signal: init.signal,
  });
}

async function streamText(body: Record<string, unknown>): Promise<{ res: Response; text: string }> {
  const res = await post({ model: "qwen-plus", stream: true, ...body });
  expect(res.status).toBe(200);
  return { res, text: await res.text() };
}

async function logFor(tag: string): Promise<LogEntry[]> {
  const res = await fetch(`${CONTROL_URL}/__stand-in/requests?tag=${encodeURIComponent(tag)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as LogEntry[];
}

/** Polls the log until `predicate` holds for the tag's entries (the server records outcomes asynchronously). */
async function waitForLog(tag: string, predicate: (entries: LogEntry[]) => boolean): Promise<LogEntry[]> {
  const deadline = Date.now() + POLL_LIMIT_MS;
  for (;;) {
    const entries = await logFor(tag);
    if (predicate(entries) || Date.now() > deadline) return entries;
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
  }
}

/** Reads a response body to the end, reporting whether it ended cleanly or with a transport error. */
async function readUntilEnd(res: Response): Promise<{ text: string; failed: boolean }> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = "";
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text, failed: false };
      text += decoder.decode(value, { stream: true });
    }
  } catch {
    return { text, failed: true };
  }
}

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_current_weather",
    description: "Current weather for a city",
    parameters: {
      type: "object",
      properties: { location: { type: "string" }, unit: { type: "string", enum: ["celsius", "fahrenheit"] } },
      required: ["location", "unit"],
    },
  },
};
const TIME_TOOL = {
  type: "function",
  function: {
    name: "get_time",
    parameters: { type: "object", properties: { zone: { type: "string" }, hours: { type: "integer" } } },
  },
};

/** Reassembles streamed tool calls by index, treating `id:""`, `name:null` and missing fields as "no change". */
function assembleToolCalls(chunks: ChatCompletionChunk[]): { id: string; name: string; arguments: string }[] {
  const calls: { id: string; name: string; arguments: string }[] = [];
  for (const chunk of chunks) {
    for (const choice of chunk.choices) {
      for (const fragment of choice.delta?.tool_calls ?? []) {
        const call = calls[fragment.index] ?? { id: "", name: "", arguments: "" };
        calls[fragment.index] = call;
        if (fragment.id) call.id = fragment.id;
        if (fragment.function?.name) call.name += fragment.function.name;
        if (typeof fragment.function?.arguments === "string") call.arguments += fragment.function.arguments;
      }
    }
  }
  return calls;
}

describe("authentication", () => {
  it.each([
    ["a wrong key", "sk-wrong"],
    ["no Authorization header", null],
  ])("rejects %s with the fixture's 401 body", async (_label, key) => {
    const res = await post({ model: "qwen-plus", messages: userMessage("hi") }, { key });
    expect(res.status).toBe(401);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = (await res.json()) as ErrorBody;
    expect(Object.keys(body)).toEqual(["error", "request_id"]);
    expect(Object.keys(body.error)).toEqual(["message", "type", "param", "code"]);
    expect(body.error).toEqual({
      message:
        "Incorrect API key provided. For details, see: https://help.aliyun.com/zh/model-studio/error-code#apikey-error",
      type: "invalid_request_error",
      param: null,
      code: "invalid_api_key",
    });
    expect(body.request_id).toMatch(UUID);
    expect(res.headers.get("x-request-id")).toBe(body.request_id);
  });
});

describe("plain text stream", () => {
  it("follows the documented chunk lifecycle and sends no usage without include_usage", async () => {
    const { res, text } = await streamText({ messages: userMessage("hello [[stand-in tokens=5]]") });
    expect(res.headers.get("content-type")).toBe("text/event-stream;charset=UTF-8");
    expect(res.headers.get("x-request-id")).toMatch(UUID);
    expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
    for (const block of text.split("\n\n").filter(Boolean)) expect(block.startsWith("data: ")).toBe(true);

    const chunks = chunksOf(text);
    for (const chunk of chunks) {
      expect(Object.keys(chunk)).toEqual(CHUNK_KEYS);
      expect(chunk.object).toBe("chat.completion.chunk");
      expect(chunk.model).toBe("qwen-plus");
      expect(chunk.usage).toBeNull();
      expect(chunk.system_fingerprint).toBeNull();
      expect(chunk.id).toBe(`chatcmpl-${res.headers.get("x-request-id")}`);
      expect(chunk.created).toBe(chunks[0]!.created);
      expect(chunk.choices).toHaveLength(1);
    }
    expect(chunks[0]!.choices[0]).toEqual({
      delta: { content: "", role: "assistant" },
      index: 0,
      logprobs: null,
      finish_reason: null,
    });
    const content = chunks.slice(1, -1);
    expect(content).toHaveLength(5);
    const words = content.map((c) => c.choices[0]!.delta.content as string);
    expect(words[0]).not.toMatch(/^ /);
    for (const w of words.slice(1)) expect(w).toMatch(/^ \S+$/);
    expect(chunks.at(-1)!.choices[0]).toEqual({
      finish_reason: "stop",
      delta: { content: "" },
      index: 0,
      logprobs: null,
    });
  });

  it("sends exactly one usage chunk, last before [DONE], when include_usage is true", async () => {
    const { text } = await streamText({
      messages: userMessage("hello [[stand-in tokens=4]]"),
      stream_options: { include_usage: true },
    });
    const events = parseSse(text);
    expect(events.at(-1)!.data).toBe("[DONE]");
    const chunks = chunksOf(text);
    const usageChunks = chunks.filter((c) => c.usage !== null);
    expect(usageChunks).toHaveLength(1);
    expect(chunks.at(-1)).toBe(usageChunks[0]);
    const usage = usageChunks[0]!.usage!;
    expect(usageChunks[0]!.choices).toEqual([]);
    expect(usage.completion_tokens).toBe(4);
    expect(usage.prompt_tokens).toBeGreaterThan(0);
    expect(usage.total_tokens).toBe(usage.prompt_tokens + usage.completion_tokens);
    expect(usage.prompt_tokens_details).toEqual({ cached_tokens: 0 });
  });

  it("defaults to a 12-token answer and stops at max_tokens with finish_reason length", async () => {
    const plain = chunksOf((await streamText({ messages: userMessage("no directive here") })).text);
    expect(plain.filter((c) => c.choices[0]!.delta.content)).toHaveLength(12);

    const capped = chunksOf(
      (await streamText({ messages: userMessage("cap [[stand-in tokens=9]]"), max_tokens: 4 })).text,
    );
    expect(capped.filter((c) => c.choices[0]!.delta.content)).toHaveLength(4);
    expect(capped.at(-1)!.choices[0]!.finish_reason).toBe("length");
  });

  it("caps the chain of thought at thinking_budget, then answers as usual", async () => {
    const chunks = chunksOf(
      (
        await streamText({
          messages: userMessage("think [[stand-in reasoning=9 tokens=3]]"),
          enable_thinking: true,
          thinking_budget: 4,
        })
      ).text,
    );
    expect(chunks.filter((c) => c.choices[0]!.delta.reasoning_content)).toHaveLength(4);
    expect(chunks.filter((c) => c.choices[0]!.delta.content)).toHaveLength(3);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("stop");
  });

  it("headers_first sends the 200 at once and the first chunk ttft later", async () => {
    const t0 = Date.now();
    const res = await post({
      model: "qwen-plus",
      stream: true,
      messages: userMessage("slow [[stand-in headers_first ttft=600 tokens=1]]"),
    });
    expect(res.status).toBe(200);
    expect(Date.now() - t0).toBeLessThan(400);
    const reader = res.body!.getReader();
    await reader.read();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(590);
    await reader.cancel();
  });

  it("prompt_tokens grows with the prompt", async () => {
    const usageOf = async (content: string) =>
      chunksOf(
        (await streamText({ messages: userMessage(content), stream_options: { include_usage: true } })).text,
      ).at(-1)!.usage!;
    const small = await usageOf("short [[stand-in tokens=1]]");
    const large = await usageOf(`short${"x".repeat(4000)} [[stand-in tokens=1]]`);
    // Exactly 4000 more characters at 4 characters per token.
    expect(large.prompt_tokens - small.prompt_tokens).toBe(1000);
  });
});

describe("thinking", () => {
  it.each([
    ["enable_thinking: true", { enable_thinking: true }, "think [[stand-in reasoning=3 tokens=2]]"],
    ["the thinking directive", {}, "think [[stand-in thinking reasoning=3 tokens=2]]"],
  ])("streams reasoning before content with %s", async (_label, extra, content) => {
    const { text } = await streamText({
      messages: userMessage(content),
      stream_options: { include_usage: true },
      ...extra,
    });
    const chunks = chunksOf(text);
    const choices = chunks.slice(0, -1).map((c) => c.choices[0]!);
    expect(choices[0]!.delta).toEqual({ content: null, role: "assistant", reasoning_content: "" });
    const kinds = choices.slice(1, -1).map((c) => (c.delta.reasoning_content ? "reasoning" : "content"));
    expect(kinds).toEqual(["reasoning", "reasoning", "reasoning", "content", "content"]);
    for (const c of choices.slice(1, 4)) expect(c.delta.content).toBeNull();
    for (const c of choices.slice(4, 6)) expect(c.delta.reasoning_content).toBeNull();
    expect(choices.at(-1)).toEqual({
      finish_reason: "stop",
      delta: { content: "", reasoning_content: null },
      index: 0,
      logprobs: null,
    });
    const usage = chunks.at(-1)!.usage!;
    expect(usage.completion_tokens).toBe(5);
    expect(usage.completion_tokens_details).toEqual({ reasoning_tokens: 3 });
  });
});

describe("tool calls", () => {
  it.each([1, 2, 3, 4])("fragment pattern %i reassembles to valid JSON arguments", async (pattern) => {
    const { text } = await streamText({
      messages: userMessage(`weather in Hangzhou? [[stand-in tool_call fragments=pattern${pattern}]]`),
      tools: [WEATHER_TOOL],
    });
    const chunks = chunksOf(text);
    const calls = assembleToolCalls(chunks);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.id).toMatch(/^call_[0-9a-f]{22}$/);
    expect(calls[0]!.name).toBe("get_current_weather");
    const args = JSON.parse(calls[0]!.arguments);
    expect(typeof args.location).toBe("string");
    expect(["celsius", "fahrenheit"]).toContain(args.unit);
    expect(chunks.at(-1)!.choices[0]).toEqual({
      finish_reason: "tool_calls",
      delta: {},
      index: 0,
      logprobs: null,
    });

    const fragments = chunks.flatMap((c) => c.choices[0]!.delta.tool_calls ?? []);
    expect(fragments.length).toBeGreaterThanOrEqual(2);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const rest = fragments.slice(1);
    if (pattern === 1) {
      expect(fragments[0]!.function!.arguments!.length).toBeGreaterThan(0);
      for (const f of rest) expect(f).toMatchObject({ id: "", type: "function" });
    }
    if (pattern === 2) {
      expect(fragments[0]!.function!.arguments).toBe("");
      expect(fragments.at(-1)).toEqual({ function: {}, index: 0, id: "", type: "function" });
    }
    if (pattern === 3) for (const f of rest) expect(f.function!.name).toBeNull();
    if (pattern === 4) {
      expect(fragments[0]!.function).not.toHaveProperty("arguments");
      for (const f of rest) {
        expect(f.function).not.toHaveProperty("name");
        expect(f.id).toBe(calls[0]!.id);
      }
    }
  });

  it("answers a forced tool_choice without any directive", async () => {
    const { text } = await streamText({
      messages: userMessage("what time is it"),
      tools: [WEATHER_TOOL, TIME_TOOL],
      tool_choice: { type: "function", function: { name: "get_time" } },
    });
    const calls = assembleToolCalls(chunksOf(text));
    expect(calls.map((c) => c.name)).toEqual(["get_time"]);
    expect(Object.keys(JSON.parse(calls[0]!.arguments)).sort()).toEqual(["hours", "zone"]);
  });

  it("emits K parallel calls only when parallel_tool_calls is true", async () => {
    const body = {
      messages: userMessage("two calls [[stand-in tool_call calls=2]]"),
      tools: [WEATHER_TOOL, TIME_TOOL],
    };
    const parallel = assembleToolCalls(
      chunksOf((await streamText({ ...body, parallel_tool_calls: true })).text),
    );
    expect(parallel.map((c) => c.name)).toEqual(["get_current_weather", "get_time"]);
    expect(new Set(parallel.map((c) => c.id)).size).toBe(2);
    for (const c of parallel) JSON.parse(c.arguments);
    const single = assembleToolCalls(chunksOf((await streamText(body)).text));
    expect(single).toHaveLength(1);
  });

  /** A request that answers the call of `[[stand-in tool_call …]]` with a tool result. */
  async function afterToolResult(directive: string, toolContent: string): Promise<ChatCompletionChunk[]> {
    const messages = userMessage(`weather? [[stand-in tool_call ${directive}]]`);
    const first = assembleToolCalls(chunksOf((await streamText({ messages, tools: [WEATHER_TOOL] })).text));
    expect(first).toHaveLength(1);
    const call = first[0]!;
    const { text } = await streamText({
      tools: [WEATHER_TOOL],
      messages: [
        ...messages,
        {
          role: "assistant",
          content: null,
          tool_calls: [
            { id: call.id, type: "function", function: { name: call.name, arguments: call.arguments } },
          ],
        },
        { role: "tool", tool_call_id: call.id, content: toolContent },
      ],
    });
    return chunksOf(text);
  }

  it("answers a tool result with text, not another tool call", async () => {
    const chunks = await afterToolResult(`tokens=4 tag=${uniqueTag("tool-result")}`, "18C and sunny");
    expect(assembleToolCalls(chunks)).toEqual([]);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("stop");
    // The user message's other directives still apply.
    const content = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(content.split(" ")).toHaveLength(4);
  });

  it("lets a tool result's own directive ask for another tool call", async () => {
    const chunks = await afterToolResult("", "18C [[stand-in tool_call]]");
    expect(assembleToolCalls(chunks).map((c) => c.name)).toEqual(["get_current_weather"]);
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("tool_calls");
  });

  it("returns complete tool_calls with empty content when not streaming", async () => {
    const res = await post({
      model: "qwen-plus",
      messages: userMessage("weather [[stand-in tool=get_current_weather]]"),
      tools: [WEATHER_TOOL],
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ChatCompletion;
    const choice = body.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBe("");
    expect(choice.message.tool_calls).toHaveLength(1);
    expect(choice.message.tool_calls![0]).toMatchObject({
      type: "function",
      function: { name: "get_current_weather" },
    });
    expect(JSON.parse(choice.message.tool_calls![0]!.function.arguments)).toHaveProperty("location");
  });

  it.each([1, 2, 3, 4])(
    'empty_arguments streams a call without arguments as arguments "" (pattern %i)',
    async (pattern) => {
      const { text } = await streamText({
        messages: userMessage(`now? [[stand-in tool=get_time empty_arguments fragments=pattern${pattern}]]`),
        tools: [TIME_TOOL],
      });
      const chunks = chunksOf(text);
      const calls = assembleToolCalls(chunks);
      expect(calls).toEqual([{ id: expect.stringMatching(/^call_/), name: "get_time", arguments: "" }]);
      expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("tool_calls");
    },
  );

  it('empty_arguments answers arguments "" when not streaming', async () => {
    const res = await post({
      model: "qwen-plus",
      messages: userMessage("now? [[stand-in tool=get_time empty_arguments]]"),
      tools: [TIME_TOOL],
    });
    const body = (await res.json()) as ChatCompletion;
    expect(body.choices[0]!.message.tool_calls![0]!.function).toEqual({ name: "get_time", arguments: "" });
  });

  it("max_tokens cuts tool calls mid-arguments and finishes with length, streamed or not", async () => {
    const body = {
      model: "qwen-plus",
      messages: userMessage("two calls [[stand-in tool_call calls=2]]"),
      tools: [WEATHER_TOOL, TIME_TOOL],
      parallel_tool_calls: true,
      // pattern1 sends each call as 3 fragments: 4 tokens end inside the second call's arguments.
      max_tokens: 4,
    };
    const { text } = await streamText(body);
    const chunks = chunksOf(text);
    const calls = assembleToolCalls(chunks);
    expect(calls.map((c) => c.name)).toEqual(["get_current_weather", "get_time"]);
    expect(JSON.parse(calls[0]!.arguments)).toHaveProperty("location");
    expect(calls[1]!.arguments.length).toBeGreaterThan(0);
    expect(() => JSON.parse(calls[1]!.arguments)).toThrow();
    expect(chunks.at(-1)!.choices[0]!.finish_reason).toBe("length");

    // Not streamed: the calls as a client would have assembled them from the cut-off stream.
    const res = await post(body);
    const choice = ((await res.json()) as ChatCompletion).choices[0]!;
    expect(choice.finish_reason).toBe("length");
    const whole = choice.message.tool_calls!.map((c) => c.function.arguments);
    expect(whole).toHaveLength(2);
    expect(JSON.parse(whole[0]!)).toHaveProperty("location");
    expect(() => JSON.parse(whole[1]!)).toThrow();
  });
});

describe("other answer shapes", () => {
  it("interleaves n=2 choices by index and sums completion tokens", async () => {
    const { text } = await streamText({
      messages: userMessage("two [[stand-in tokens=3]]"),
      n: 2,
      stream_options: { include_usage: true },
    });
    const chunks = chunksOf(text);
    const indexes = chunks.slice(0, -1).map((c) => c.choices[0]!.index);
    expect(indexes).toEqual([0, 1, 0, 1, 0, 1, 0, 1, 0, 1]);
    const finishes = chunks.filter((c) => c.choices[0]?.finish_reason === "stop");
    expect(finishes.map((c) => c.choices[0]!.index)).toEqual([0, 1]);
    const answer = (i: number) =>
      chunks
        .filter((c) => c.choices[0]?.index === i)
        .map((c) => c.choices[0]!.delta.content ?? "")
        .join("");
    expect(answer(0)).not.toBe(answer(1));
    expect(chunks.at(-1)!.usage!.completion_tokens).toBe(6);
  });

  it("attaches logprobs to every content chunk in the captured key order", async () => {
    const { text } = await streamText({
      messages: userMessage("lp [[stand-in tokens=3]]"),
      logprobs: true,
      top_logprobs: 2,
    });
    const chunks = chunksOf(text);
    expect(chunks[0]!.choices[0]!.logprobs).toBeNull();
    expect(chunks.at(-1)!.choices[0]!.logprobs).toBeNull();
    const content = chunks.slice(1, -1).map((c) => c.choices[0]!);
    expect(content).toHaveLength(3);
    for (const choice of content) {
      const entry = choice.logprobs!.content![0]!;
      expect(Object.keys(entry)).toEqual(["top_logprobs", "logprob", "bytes", "token"]);
      expect(entry.token).toBe(choice.delta.content);
      expect(entry.bytes).toEqual([...new TextEncoder().encode(entry.token)]);
      expect(entry.logprob).toBeLessThanOrEqual(0);
      expect(entry.top_logprobs).toHaveLength(2);
      expect(entry.top_logprobs![0]).toEqual({
        logprob: entry.logprob,
        bytes: entry.bytes,
        token: entry.token,
      });
    }
  });

  it("streams a parseable JSON object for response_format json_object", async () => {
    const { text } = await streamText({
      messages: userMessage("Reply in JSON please."),
      response_format: { type: "json_object" },
    });
    const chunks = chunksOf(text);
    const deltas = chunks.map((c) => c.choices[0]!.delta.content ?? "").filter(Boolean);
    expect(deltas.length).toBeGreaterThan(2);
    const parsed = JSON.parse(deltas.join(""));
    expect(typeof parsed).toBe("object");
    expect(Object.keys(parsed).length).toBeGreaterThan(0);

    const res = await post({
      model: "qwen-plus",
      messages: userMessage("Reply in JSON please."),
      response_format: { type: "json_object" },
    });
    const body = (await res.json()) as ChatCompletion;
    const nonStreamed = JSON.parse(body.choices[0]!.message.content!);
    expect(typeof nonStreamed).toBe("object");
    expect(Object.keys(nonStreamed).length).toBeGreaterThan(0);
  });

  it("streams Omni text then base64 PCM audio with audio usage details", async () => {
    const { text } = await streamText({
      model: "qwen3.5-omni-plus",
      messages: userMessage("speak [[stand-in tokens=2 audio=3]]"),
      modalities: ["text", "audio"],
      audio: { voice: "Tina", format: "wav" },
      stream_options: { include_usage: true },
    });
    const chunks = chunksOf(text);
    const deltas = chunks.slice(0, -2).map((c) => c.choices[0]!.delta);
    expect(deltas.map((d) => ("audio" in d ? "audio" : "text"))).toEqual([
      "text",
      "text",
      "audio",
      "audio",
      "audio",
    ]);
    const chatUuid = (chunks[0]!.id as string).replace("chatcmpl-", "");
    for (const d of deltas.filter((d) => "audio" in d)) {
      const audio = d.audio!;
      expect(Object.keys(audio)).toEqual(["data", "expires_at", "id"]);
      expect(audio.id).toBe(`audio_${chatUuid}`);
      const pcm = atob(audio.data!);
      expect(pcm.length % 2).toBe(0);
      expect(pcm.length).toBeGreaterThan(0);
    }
    expect(chunks.at(-2)!.choices[0]!.finish_reason).toBe("stop");
    const usage = chunks.at(-1)!.usage!;
    expect(usage.completion_tokens_details).toEqual({ audio_tokens: 3, text_tokens: 2 });
    expect(usage.completion_tokens).toBe(5);
  });

  it("echoes the received messages as the answer", async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: "What did I say? [[stand-in echo]]" }] },
    ];
    const res = await post({ model: "qwen-plus", messages });
    const body = (await res.json()) as ChatCompletion;
    expect(JSON.parse(body.choices[0]!.message.content!)).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "What did I say? [[stand-in echo]]" },
    ]);
  });

  it("answers non-streaming requests in the chat.completion shape", async () => {
    const res = await post({ model: "qwen-max", messages: userMessage("hi [[stand-in tokens=4]]") });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = (await res.json()) as ChatCompletion;
    expect(Object.keys(body)).toEqual([
      "choices",
      "object",
      "usage",
      "created",
      "system_fingerprint",
      "model",
      "id",
    ]);
    expect(body.object).toBe("chat.completion");
    expect(body.model).toBe("qwen-max");
    expect(body.choices[0]).toMatchObject({
      message: { role: "assistant" },
      finish_reason: "stop",
      index: 0,
      logprobs: null,
    });
    expect((body.choices[0]!.message.content as string).split(" ")).toHaveLength(4);
    expect(body.usage!.completion_tokens).toBe(4);
  });
});

describe("errors before the stream", () => {
  it.each([
    ["invalid_api_key", 401, "invalid_api_key", "invalid_request_error"],
    ["limit_requests", 429, "limit_requests", "limit_requests"],
    ["limit_burst_rate", 429, "limit_burst_rate", "limit_burst_rate"],
    ["insufficient_quota", 429, "insufficient_quota", "insufficient_quota"],
    ["data_inspection_failed", 400, "data_inspection_failed", "data_inspection_failed"],
    ["arrearage", 400, "Arrearage", "Arrearage"],
    ["access_denied", 403, "access_denied", "invalid_request_error"],
    ["model_not_found", 404, "model_not_found", "invalid_request_error"],
    ["invalid_parameter", 400, "invalid_parameter_error", "invalid_request_error"],
    ["internal_error", 500, "internal_error", "internal_error"],
    ["service_unavailable", 503, "service_unavailable", "service_unavailable"],
  ])("error=%s → HTTP %i with code %s", async (name, status, code, type) => {
    const res = await post({
      model: "qwen-plus",
      stream: true,
      messages: userMessage(`x [[stand-in error=${name}]]`),
    });
    expect(res.status).toBe(status);
    expect(res.headers.get("content-type")).toBe("application/json");
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe(code);
    expect(body.error.type).toBe(type);
    expect(body.error.param).toBeNull();
    expect(typeof body.error.message).toBe("string");
    expect(body.request_id).toBe(res.headers.get("x-request-id"));
    if (name === "data_inspection_failed") expect(body.id).toBe(`chatcmpl-${body.request_id}`);
    if (name === "limit_requests") expect(res.headers.get("retry-after")).toBe("1");
    if (name === "limit_burst_rate") expect(res.headers.get("retry-after")).toBeNull();
  });

  it("sets Retry-After from retry_after on 429 and 503", async () => {
    for (const name of ["limit_burst_rate", "service_unavailable"]) {
      const res = await post({
        model: "qwen-plus",
        messages: userMessage(`x [[stand-in error=${name} retry_after=7]]`),
      });
      expect(res.headers.get("retry-after")).toBe("7");
      await res.body?.cancel();
    }
  });

  it("fails only the first fail_times attempts of the same body, then answers", async () => {
    const tag = uniqueTag("fail-times");
    const body = {
      model: "qwen-plus",
      stream: true,
      messages: userMessage(`retry me [[stand-in fail_times=2 error=limit_requests tag=${tag}]]`),
    };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await post(body);
      statuses.push(res.status);
      await res.text();
    }
    expect(statuses).toEqual([429, 429, 200]);
    const log = await waitForLog(tag, (e) => e.length === 3 && e.every((x) => x.ended_at !== null));
    expect(log.map((e) => [e.attempt, e.status, e.outcome])).toEqual([
      [1, 429, "error"],
      [2, 429, "error"],
      [3, 200, "completed"],
    ]);
  });

  it.each([
    [
      "a body that is not JSON",
      null,
      "<400> InternalError.Algo.InvalidParameter: The request body is not valid JSON.",
    ],
    ["missing messages", { model: "qwen-plus" }, "'messages' is a required property"],
    ["empty messages", { model: "qwen-plus", messages: [] }, "[] is too short"],
    [
      "temperature 2",
      { model: "qwen-plus", messages: userMessage("hi"), temperature: 2 },
      "Temperature should be in [0.0, 2.0)",
    ],
    ["n = 5", { model: "qwen-plus", messages: userMessage("hi"), n: 5 }, "Range of n should be [1, 4]"],
    [
      "json_object without the word json",
      { model: "qwen-plus", messages: userMessage("hi"), response_format: { type: "json_object" } },
      "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
    ],
    [
      "json_object with thinking",
      {
        model: "qwen-plus",
        stream: true,
        enable_thinking: true,
        messages: userMessage("json"),
        response_format: { type: "json_object" },
      },
      "Json mode response is not supported when enable_thinking is true",
    ],
    [
      "audio without stream",
      { model: "qwen-omni-turbo", messages: userMessage("hi"), modalities: ["text", "audio"] },
      "'audio' output only support with stream=true",
    ],
    [
      "a tool message without preceding tool_calls",
      {
        model: "qwen-plus",
        messages: [
          { role: "user", content: "hi" },
          { role: "tool", tool_call_id: "call_1", content: "18C" },
        ],
      },
      'messages with role "tool" must be a response to a preceeding message with "tool_calls"',
    ],
    ...[
      ["an empty", ""],
      ["a cut-off", '{"location": "Hang'],
    ].map(([kind, args]): [string, Record<string, unknown>, string] => [
      `${kind} arguments text in a history tool call`,
      {
        model: "qwen-plus",
        messages: [
          { role: "user", content: "weather?" },
          {
            role: "assistant",
            content: "",
            tool_calls: [{ id: "call_1", type: "function", function: { name: "get_time", arguments: args } }],
          },
          { role: "tool", tool_call_id: "call_1", content: "18C" },
        ],
      },
      '<400> InternalError.Algo.InvalidParameter: The "function.arguments" parameter of the code model must be in JSON format.',
    ]),
    [
      "thinking without stream",
      { model: "qwen-plus", enable_thinking: true, messages: userMessage("hi") },
      "parameter.enable_thinking must be set to false for non-streaming calls",
    ],
  ])("rejects %s with 400 invalid_parameter_error", async (_label, body, message) => {
    const res = await post(body, body === null ? { raw: "{not json" } : {});
    expect(res.status).toBe(400);
    const json = (await res.json()) as ErrorBody;
    expect(Object.keys(json.error)).toEqual(["code", "message", "param", "type"]);
    expect(json.error).toEqual({
      code: "invalid_parameter_error",
      message,
      param: null,
      type: "invalid_request_error",
    });
    expect(json.request_id).toMatch(UUID);
  });

  it("accepts a tool message that answers a preceding assistant tool_calls turn", async () => {
    const res = await post({
      model: "qwen-plus",
      messages: [
        { role: "user", content: "weather?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_current_weather", arguments: "{}" },
              index: 0,
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "18C" },
      ],
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
  });

  it("answers 404 model_not_found for qwen-does-not-exist", async () => {
    const res = await post({ model: "qwen-does-not-exist", messages: userMessage("hi") });
    expect(res.status).toBe(404);
    const body = (await res.json()) as ErrorBody;
    expect(body.error).toEqual({
      message: "The model `qwen-does-not-exist` does not exist or you do not have access to it.",
      type: "invalid_request_error",
      param: null,
      code: "model_not_found",
    });
  });

  it("rejects prompts over the model's input window with the Range of input length message", async () => {
    const over = await post({
      model: "qwen-tiny-context",
      stream: true,
      messages: userMessage("a".repeat(4 * 2048)),
    });
    expect(over.status).toBe(400);
    const body = (await over.json()) as ErrorBody;
    expect(body.error).toEqual({
      code: "invalid_parameter_error",
      message: "<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 2048]",
      param: null,
      type: "invalid_request_error",
    });
    const under = await post({ model: "qwen-tiny-context", messages: userMessage("a".repeat(4 * 1000)) });
    expect(under.status).toBe(200);
    await under.body?.cancel();
  });

  it("counts the whole request against the input window: tools, a json_schema response format, media", async () => {
    const text = "x [[stand-in tokens=1]]";
    const promptTokens = async (extra: Record<string, unknown>) => {
      const res = await post({ model: "qwen-plus", messages: userMessage(text), ...extra });
      expect(res.status).toBe(200);
      return ((await res.json()) as ChatCompletion).usage!.prompt_tokens;
    };
    const base = await promptTokens({});
    const tools = [{ type: "function", function: { name: "t", description: "d".repeat(4000) } }];
    // Characters are counted over the whole request, 4 to a token.
    const extraTokens = (value: unknown) =>
      Math.ceil((text.length + JSON.stringify(value).length) / 4) - Math.ceil(text.length / 4);
    expect((await promptTokens({ tools })) - base).toBe(extraTokens(tools));
    const responseFormat = {
      type: "json_schema",
      json_schema: { name: "n", schema: { type: "object", description: "d".repeat(4000) } },
    };
    expect((await promptTokens({ response_format: responseFormat })) - base).toBe(
      extraTokens(responseFormat),
    );
    // A json_object format adds no schema.
    const jsonAsked = { messages: userMessage(`${text} json`) };
    expect(await promptTokens({ ...jsonAsked, response_format: { type: "json_object" } })).toBe(
      await promptTokens(jsonAsked),
    );
    const image = { type: "image_url", image_url: { url: "https://example.com/a.png" } };
    const withImage = async (extra: Record<string, unknown>) => {
      const res = await post({
        model: "qwen-plus",
        messages: [{ role: "user", content: [image, { type: "text", text }] }],
        ...extra,
      });
      return ((await res.json()) as ChatCompletion).usage!.prompt_tokens;
    };
    expect((await withImage({})) - base).toBe(1280);
    expect((await withImage({ vl_high_resolution_images: true })) - base).toBe(16_384);

    // Tools alone push a short message over qwen-tiny-context's 2048 input tokens.
    const over = await post({
      model: "qwen-tiny-context",
      messages: userMessage("hi"),
      tools: [{ type: "function", function: { name: "t", description: "d".repeat(4 * 2048) } }],
    });
    expect(over.status).toBe(400);
    expect(((await over.json()) as ErrorBody).error.message).toBe(
      "<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 2048]",
    );
  });
});

describe("image parts", () => {
  /** SHA-256 hex, computed here independently of the stand-in. */
  const sha256Hex = async (bytes: Uint8Array) =>
    [...new Uint8Array(await crypto.subtle.digest("SHA-256", bytes))]
      .map((b) => b.toString(16).padStart(2, "0"))
      .join("");
  const base64 = (bytes: Uint8Array) => btoa(String.fromCharCode(...bytes));
  const imagePart = (url: string) => ({ type: "image_url", image_url: { url } });

  it("logs each image part of each message: a data URL decoded and hashed, a URL as given", async () => {
    const tag = uniqueTag("images");
    const png = crypto.getRandomValues(new Uint8Array(3_000));
    png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const jpeg = crypto.getRandomValues(new Uint8Array(1_234));
    jpeg.set([0xff, 0xd8, 0xff]);
    const res = await post({
      model: "qwen-plus",
      messages: [
        {
          role: "user",
          content: [imagePart(`data:image/png;base64,${base64(png)}`), { type: "text", text: "a" }],
        },
        { role: "assistant", content: "b" },
        {
          role: "user",
          content: [
            { type: "text", text: `c [[stand-in tag=${tag}]]` },
            imagePart("https://example.com/cat.jpg"),
            imagePart(`data:image/jpeg;base64,${base64(jpeg)}`),
          ],
        },
      ],
    });
    expect(res.status).toBe(200);
    await res.body?.cancel();
    const [entry] = await logFor(tag);
    expect(entry?.images).toEqual([
      {
        message: 0,
        part: 0,
        kind: "data_url",
        media_type: "image/png",
        bytes: 3_000,
        sha256: await sha256Hex(png),
      },
      {
        message: 2,
        part: 1,
        kind: "url",
        url: "https://example.com/cat.jpg",
        media_type: null,
        bytes: null,
        sha256: null,
      },
      {
        message: 2,
        part: 2,
        kind: "data_url",
        media_type: "image/jpeg",
        bytes: 1_234,
        sha256: await sha256Hex(jpeg),
      },
    ]);
  });

  it("refuses a data URL longer than 10,485,760 characters as DashScope does, and takes one of exactly that length", async () => {
    const prefix = "data:image/png;base64,";
    const dataUrl = (chars: number) => prefix + "A".repeat(chars - prefix.length);
    const send = (url: string) =>
      post({
        model: "qwen-plus",
        messages: [{ role: "user", content: [imagePart(url), { type: "text", text: "hi" }] }],
      });
    const over = await send(dataUrl(10_485_761));
    expect(over.status).toBe(400);
    const body = (await over.json()) as ErrorBody;
    expect(body.error).toEqual({
      code: "invalid_parameter_error",
      message: "Exceeded limit on max bytes per data-uri item : 10485760",
      param: null,
      type: "invalid_request_error",
    });
    expect(body.request_id).toMatch(UUID);
    const atLimit = await send(dataUrl(10_485_760));
    expect(atLimit.status).toBe(200);
    await atLimit.body?.cancel();
  });
});

describe("requests DashScope answers only as a stream", () => {
  it.each(STREAM_ONLY_KINDS)("rejects $label without stream: true, and streams it", async (kind) => {
    const messages = userMessage("hi [[stand-in tokens=2 reasoning=2 audio=2]]");
    const refused = await post({ ...kind.fields, messages });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as ErrorBody).error).toEqual({
      code: "invalid_parameter_error",
      message: kind.message,
      param: null,
      type: "invalid_request_error",
    });
    // Explicitly false is the same as absent.
    const refusedAgain = await post({ ...kind.fields, messages, stream: false });
    expect(refusedAgain.status).toBe(400);
    await refusedAgain.body?.cancel();

    const { text } = await streamText({ ...kind.fields, messages });
    const deltas = chunksOf(text).flatMap((c) => c.choices.map((choice) => choice.delta));
    const reasoning = deltas.map((d) => d.reasoning_content ?? "").join("");
    expect(reasoning.split(" ").filter(Boolean)).toHaveLength(kind.thinks ? 2 : 0);
    expect(
      deltas
        .map((d) => d.content ?? "")
        .join("")
        .split(" "),
    ).toHaveLength(2);
    const audio = deltas.filter((d) => d.audio);
    expect(audio).toHaveLength((kind.fields.modalities as string[] | undefined)?.includes("audio") ? 2 : 0);
  });

  it.each(EITHER_WAY_KINDS)("answers $label without a stream", async (kind) => {
    const res = await post({ ...kind.fields, messages: userMessage("hi [[stand-in tokens=3]]") });
    expect(res.status).toBe(200);
    const body = (await res.json()) as ChatCompletion;
    expect(body.object).toBe("chat.completion");
    expect(body.choices[0]!.message).toEqual({ role: "assistant", content: expect.any(String) });
    expect(body.usage!.completion_tokens).toBe(3);
  });
});

describe("errors inside the stream", () => {
  it("Shape A: an OpenAI-style error frame after `after` tokens, then the stream ends without [DONE]", async () => {
    const tag = uniqueTag("midstream-a");
    const { res, text } = await streamText({
      messages: userMessage(`x [[stand-in midstream=openai after=2 tag=${tag}]]`),
    });
    const events = parseSse(text);
    expect(events.some((e) => e.data === "[DONE]")).toBe(false);
    const last = JSON.parse(events.at(-1)!.data) as ErrorBody;
    expect(Object.keys(last)).toEqual(["error", "id"]);
    expect(last.error).toMatchObject({
      code: "data_inspection_failed",
      param: null,
      type: "data_inspection_failed",
    });
    expect(last.error.message).toMatch(/^Output data may contain inappropriate content\./);
    expect(last.id).toBe(`chatcmpl-${res.headers.get("x-request-id")}`);
    const content = events
      .slice(0, -1)
      .map((e) => JSON.parse(e.data) as ChatCompletionChunk)
      .filter((c) => c.choices[0]!.delta.content);
    expect(content).toHaveLength(2);
    const [entry] = await waitForLog(tag, (e) => e[0]?.ended_at != null);
    expect(entry).toMatchObject({ status: 200, outcome: "midstream_error", tokens_sent: 2 });
  });

  it("Shape A with done_after_error also sends [DONE]", async () => {
    const { text } = await streamText({
      messages: userMessage("x [[stand-in midstream=openai after=1 done_after_error]]"),
    });
    const events = parseSse(text);
    expect(events.at(-1)!.data).toBe("[DONE]");
    expect(JSON.parse(events.at(-2)!.data)).toHaveProperty("error.code", "data_inspection_failed");
  });

  it("Shape B: the native error frame byte for byte", async () => {
    const { res, text } = await streamText({
      messages: userMessage("x [[stand-in midstream=native after=0]]"),
    });
    const requestId = res.headers.get("x-request-id");
    expect(text).toBe(
      `id:1\nevent:error\n:HTTP_STATUS/429\ndata:{"request_id":"${requestId}","code":"Throttling.AllocationQuota","message":"Allocated quota exceeded, please increase your quota limit."}\n\n`,
    );
  });

  it("disconnect=N cuts the connection after N tokens: no finish chunk, no [DONE]", async () => {
    const tag = uniqueTag("disconnect");
    const res = await post({
      model: "qwen-plus",
      stream: true,
      messages: userMessage(`x [[stand-in disconnect=2 tag=${tag}]]`),
    });
    expect(res.status).toBe(200);
    const { text } = await readUntilEnd(res);
    expect(text).not.toContain("[DONE]");
    expect(text).not.toContain('"finish_reason":"stop"');
    const [entry] = await waitForLog(tag, (e) => e[0]?.ended_at != null);
    expect(entry).toMatchObject({ outcome: "disconnected", tokens_sent: 2 });
  });
});

describe("timing faults and client aborts", () => {
  it("hang never sends headers; the request is logged as hanging", async () => {
    const tag = uniqueTag("hang");
    const attempt = post(
      { model: "qwen-plus", stream: true, messages: userMessage(`x [[stand-in hang tag=${tag}]]`) },
      { signal: AbortSignal.timeout(300) },
    );
    await expect(attempt).rejects.toThrow();
    const [entry] = await waitForLog(tag, (e) => e[0]?.ended_at != null);
    expect(entry).toMatchObject({ status: null, outcome: "hanging" });
    expect(entry!.ended_at).not.toBeNull();
  });

  it("hang_body sends 200 headers but no body bytes", async () => {
    const controller = new AbortController();
    const res = await post(
      { model: "qwen-plus", stream: true, messages: userMessage("x [[stand-in hang_body]]") },
      { signal: controller.signal },
    );
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const read = reader.read();
    const timedOut = Symbol("timed out");
    const winner = await Promise.race([
      read.then(() => "data"),
      new Promise((r) => setTimeout(() => r(timedOut), 300)),
    ]);
    expect(winner).toBe(timedOut);
    controller.abort();
    await read.catch(() => undefined);
  });

  it("records a client abort mid-stream as client_closed", async () => {
    const tag = uniqueTag("abort");
    const controller = new AbortController();
    const res = await post(
      {
        model: "qwen-plus",
        stream: true,
        messages: userMessage(`x [[stand-in tokens=500 itl=20 tag=${tag}]]`),
      },
      { signal: controller.signal },
    );
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    await reader.cancel().catch(() => undefined);
    const [entry] = await waitForLog(tag, (e) => e[0]?.ended_at != null);
    expect(entry!.outcome).toBe("client_closed");
    expect(entry!.tokens_sent).toBeLessThan(500);
  });

  /** Reads until `count` data events arrived, then checks nothing more comes within `quietMs`. */
  async function readThenQuiet(res: Response, count: number, quietMs: number) {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (parseSse(text).filter((e) => e.data !== "").length < count) {
      const { value, done } = await reader.read();
      if (done) throw new Error("the stream ended");
      text += decoder.decode(value, { stream: true });
    }
    const more: string[] = [];
    const until = Date.now() + quietMs;
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) break;
      const next = await Promise.race([
        reader.read(),
        new Promise<null>((r) => setTimeout(() => r(null), left)),
      ]);
      if (next === null) break;
      if (next.done) throw new Error("the stream ended while stalled");
      more.push(decoder.decode(next.value, { stream: true }));
    }
    return { text, more: more.join(""), reader };
  }

  it("stall=N goes quiet after N deltas with the connection open, until the client closes it", async () => {
    const tag = uniqueTag("stall");
    const res = await post({
      model: "qwen-plus",
      stream: true,
      messages: userMessage(`x [[stand-in tokens=6 stall=2 tag=${tag}]]`),
    });
    expect(res.status).toBe(200);
    // The role chunk and two content tokens, then silence.
    const { text, more, reader } = await readThenQuiet(res, 3, 400);
    expect(chunksOf(text).map((c) => c.choices[0]!.delta.content)).toEqual([
      "",
      expect.any(String),
      expect.any(String),
    ]);
    expect(more).toBe("");
    expect((await logFor(tag))[0]).toMatchObject({ outcome: null, tokens_sent: 2 });
    await reader.cancel();
    const [entry] = await waitForLog(tag, (e) => e[0]?.ended_at != null);
    expect(entry).toMatchObject({ outcome: "client_closed", tokens_sent: 2 });
  });

  it("stall on a non-streaming request sends the headers and half the body, then goes quiet", async () => {
    const tag = uniqueTag("stall-plain");
    const res = await post({ model: "qwen-plus", messages: userMessage(`x [[stand-in stall tag=${tag}]]`) });
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toMatch(/^\{"choices":/);
    const next = await Promise.race([reader.read(), new Promise((r) => setTimeout(() => r("quiet"), 400))]);
    expect(next).toBe("quiet");
    await reader.cancel();
    const [entry] = await waitForLog(tag, (e) => e[0]?.ended_at != null);
    expect(entry).toMatchObject({ outcome: "client_closed", status: 200 });
  });

  it("stall_ping sends only SSE comments while stalled", async () => {
    const res = await post({
      model: "qwen-plus",
      stream: true,
      messages: userMessage("x [[stand-in tokens=6 stall=1 stall_ping=50]]"),
    });
    const { more, reader } = await readThenQuiet(res, 2, 400);
    await reader.cancel();
    const blocks = parseSse(more);
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    for (const block of blocks) expect(block).toMatchObject({ comments: [" keep-alive"], data: "" });
  });
});

describe("determinism", () => {
  it("gives byte-identical responses (ids and created included) for identical bodies", async () => {
    const body = {
      model: "qwen-plus",
      stream: true,
      enable_thinking: true,
      messages: userMessage("same bytes [[stand-in tokens=6 reasoning=2]]"),
      stream_options: { include_usage: true },
    };
    const first = await post(body);
    const second = await post(body);
    const [a, b] = [await first.text(), await second.text()];
    expect(a).toBe(b);
    expect(first.headers.get("x-request-id")).toBe(second.headers.get("x-request-id"));

    const other = await post({
      ...body,
      messages: userMessage("same bytes [[stand-in tokens=6 reasoning=2]]!"),
    });
    const c = await other.text();
    expect(chunksOf(c)[0]!.id).not.toBe(chunksOf(a)[0]!.id);
  });
});

describe("control API", () => {
  it("reports health", async () => {
    const res = await fetch(`${CONTROL_URL}/__stand-in/health`);
    expect(await res.json()).toEqual({ ok: true });
  });

  it("finds a test's requests by tag and never exposes the API key", async () => {
    const tag = uniqueTag("log");
    const body = {
      model: "qwen-turbo",
      stream: true,
      stream_options: { include_usage: true },
      messages: userMessage(`x [[stand-in tokens=3 tag=${tag}]]`),
    };
    await (await post(body)).text();
    await (await post({ model: "qwen-turbo", messages: userMessage("untagged") })).text();
    const res = await fetch(`${CONTROL_URL}/__stand-in/requests?tag=${encodeURIComponent(tag)}`);
    const raw = await res.text();
    expect(raw).not.toContain(API_KEY);
    const entries = JSON.parse(raw) as LogEntry[];
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      tag,
      model: "qwen-turbo",
      stream: true,
      include_usage: true,
      body,
      authorized: true,
      attempt: 1,
      status: 200,
      outcome: "completed",
      tokens_sent: 3,
    });
    expect(entries[0]!.ended_at).toBeGreaterThanOrEqual(entries[0]!.started_at);

    const all = (await (await fetch(`${CONTROL_URL}/__stand-in/requests`)).json()) as LogEntry[];
    expect(all.length).toBeGreaterThan(entries.length);
    expect(JSON.stringify(all)).not.toContain(API_KEY);
  });

  it("answers a request target that is not a URL with 400 and keeps serving", async () => {
    // fetch() cannot send such a request line, so it goes over a raw socket.
    const { host, port } = new URL(CONTROL_URL);
    const socket = connect({ hostname: host.replace(/:.*/, ""), port: Number(port) });
    const writer = socket.writable.getWriter();
    await writer.write(
      new TextEncoder().encode(
        "GET http://[::1/__stand-in/requests HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      ),
    );
    const reply = await new Response(socket.readable).text();
    expect(reply.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    const health = await fetch(`${CONTROL_URL}/__stand-in/health`);
    expect(await health.json()).toEqual({ ok: true });
  });
});
