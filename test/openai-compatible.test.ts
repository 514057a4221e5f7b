import { exports } from "cloudflare:workers";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { MODEL_CONTEXT_TOKENS } from "../src/chat/models";
import { type OpenAiStreamOutcome, toOpenAiEventStream } from "../src/chat/openai-stream";
import { call, eventually, newTag, newUser, type StandInRequest, standInRequests } from "./helpers/api";
import type { ChatCompletion, ErrorBody } from "./helpers/api-types";

/** The `data:` payloads and comments of an SSE text, in order. */
function sseFrames(text: string): { data: string[]; comments: string[] } {
  const data: string[] = [];
  const comments: string[] = [];
  for (const block of text.split(/\r?\n\r?\n/)) {
    for (const line of block.split(/\r?\n/)) {
      if (line.startsWith(":")) comments.push(line.slice(1).trim());
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
  }
  return { data, comments };
}

const chunksOf = (data: string[]) => data.filter((d) => d !== "[DONE]").map((d) => JSON.parse(d));

/** Sends `body` straight to the stand-in (the same bytes the Worker sent, so the same answer). */
async function direct(body: unknown): Promise<Response> {
  return fetch(`${inject("standInBaseUrl")}/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${inject("standInApiKey")}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

/** The one upstream request the Worker made for `tag`. */
async function upstreamRequest(tag: string): Promise<StandInRequest> {
  const entries = await standInRequests(tag);
  expect(entries).toHaveLength(1);
  return entries[0]!;
}

const ask = (text: string, extra: Record<string, unknown> = {}) => ({
  model: "qwen-plus",
  messages: [{ role: "user", content: text }],
  ...extra,
});

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};

async function expectOpenAiError(res: Response, status: number, code: string, type: string) {
  expect(res.status).toBe(status);
  const body = (await res.json()) as { error: Record<string, unknown> };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toMatchObject({ code, type });
  expect(typeof body.error.message).toBe("string");
  expect("param" in body.error).toBe(true);
  return body.error;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("POST /v1/chat/completions, non-streaming", () => {
  it("returns the upstream completion unchanged, n up to 4", async () => {
    const tag = newTag();
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`hi [[stand-in tokens=5 tag=${tag}]]`, { n: 3, logprobs: true, top_logprobs: 2 }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const ours = (await res.json()) as ChatCompletion;
    const sent = await upstreamRequest(tag);
    expect(sent.stream).toBe(false);
    expect(sent.body.n).toBe(3);
    const theirs = await (await direct(sent.body)).json();
    expect(ours).toEqual(theirs);
    expect(ours.choices).toHaveLength(3);
    expect(ours.choices[0]!.logprobs!.content!.length).toBeGreaterThan(0);
    expect(ours.usage!.completion_tokens).toBeGreaterThan(0);
  });

  it("returns complete tool calls", async () => {
    const tag = newTag();
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`weather? [[stand-in tool_call tag=${tag}]]`, { tools: [weatherTool] }),
    );
    expect(res.status).toBe(200);
    const completion = (await res.json()) as ChatCompletion;
    expect(completion.choices[0]!.finish_reason).toBe("tool_calls");
    expect(completion.choices[0]!.message.tool_calls![0]).toMatchObject({
      type: "function",
      function: { name: "get_weather" },
    });
    expect(JSON.parse(completion.choices[0]!.message.tool_calls![0]!.function.arguments)).toHaveProperty(
      "location",
    );
  });
});

describe("POST /v1/chat/completions, streaming", () => {
  it.each([
    ["plain text", "tokens=6", {}],
    ["reasoning", "thinking reasoning=4 tokens=3", { enable_thinking: true }],
    ["tool-call fragments", "tool_call fragments=pattern2", { tools: [weatherTool] }],
    ["logprobs and two choices", "tokens=4", { logprobs: true, top_logprobs: 3, n: 2 }],
  ])("passes %s chunks through as the upstream sent them", async (_name, directive, extra) => {
    const tag = newTag();
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`go [[stand-in ${directive} tag=${tag}]]`, { stream: true, ...extra }),
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const ours = sseFrames(await res.text()).data;

    const sent = await upstreamRequest(tag);
    const theirs = sseFrames(await (await direct(sent.body)).text()).data;
    expect(theirs.at(-1)).toBe("[DONE]");
    expect(ours.at(-1)).toBe("[DONE]");
    // Everything but the usage chunk, which the client did not ask for.
    const upstreamChunks = chunksOf(theirs);
    expect(upstreamChunks.at(-1).choices).toEqual([]);
    expect(chunksOf(ours)).toEqual(upstreamChunks.slice(0, -1));
  });

  it("always asks upstream for usage, and forwards the usage chunk only when the client asked", async () => {
    const without = newTag();
    const plain = sseFrames(
      await (
        await call(
          newUser("oc"),
          "POST",
          "/chat/completions",
          ask(`a [[stand-in tokens=3 tag=${without}]]`, { stream: true }),
        )
      ).text(),
    );
    expect((await upstreamRequest(without)).include_usage).toBe(true);
    expect(chunksOf(plain.data).every((c) => c.choices.length > 0 && c.usage === null)).toBe(true);

    const withUsage = newTag();
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`a [[stand-in tokens=3 tag=${withUsage}]]`, {
        stream: true,
        stream_options: { include_usage: true },
      }),
    );
    const frames = sseFrames(await res.text()).data;
    expect(frames.at(-1)).toBe("[DONE]");
    const last = JSON.parse(frames.at(-2)!);
    expect(last.choices).toEqual([]);
    expect(last.usage).toMatchObject({ completion_tokens: 3 });
    expect((await upstreamRequest(withUsage)).include_usage).toBe(true);
  });

  it("computes the caller's usage from the usage chunk even when the client did not ask for it", async () => {
    const log = vi.spyOn(console, "log");
    const tag = newTag();
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`a [[stand-in tokens=7 tag=${tag}]]`, { stream: true }),
    );
    await res.text();
    const finished = log.mock.calls
      .map((args) => String(args[0]))
      .filter((line) => line.includes('"completion.finished"'))
      .map((line) => JSON.parse(line));
    const sent = await upstreamRequest(tag);
    const upstreamUsage = chunksOf(sseFrames(await (await direct(sent.body)).text()).data).at(-1).usage;
    const mine = finished.find(
      (f) => f.usage?.total_tokens === upstreamUsage.total_tokens && f.status === "completed",
    );
    expect(mine).toBeDefined();
    expect(mine.usage).toMatchObject({ prompt_tokens: upstreamUsage.prompt_tokens, completion_tokens: 7 });
  });

  it.each([
    [
      "an OpenAI-shape content-filter frame",
      "midstream=openai after=2",
      "content_filtered",
      "invalid_request_error",
    ],
    ["a native throttling frame", "midstream=native after=2", "rate_limited", "rate_limit_error"],
    [
      "a content-filter frame followed by [DONE]",
      "midstream=openai after=2 done_after_error",
      "content_filtered",
      "invalid_request_error",
    ],
    ["a dropped connection", "disconnect=2", "upstream_error", "api_error"],
  ])("turns %s into a final OpenAI error frame, never [DONE]", async (_name, directive, code, type) => {
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`go [[stand-in tokens=6 ${directive} tag=${newTag()}]]`, { stream: true }),
    );
    expect(res.status).toBe(200);
    const frames = sseFrames(await res.text()).data;
    expect(frames).not.toContain("[DONE]");
    const contentChunks = chunksOf(frames.slice(0, -1)).filter((c) => c.choices[0]?.delta?.content);
    expect(contentChunks.length).toBeGreaterThanOrEqual(2);
    const last = JSON.parse(frames.at(-1)!);
    expect(Object.keys(last)).toEqual(["error"]);
    expect(last.error).toMatchObject({ code, type, param: null });
    expect(last.error.message).not.toMatch(/sk-/);
  });

  it("sends keep-alive comments while the upstream is quiet", async () => {
    // The test Worker pings every 300 ms; the upstream waits 0.8 s between chunks.
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`go [[stand-in tokens=1 itl=800 tag=${newTag()}]]`, { stream: true }),
    );
    const { data, comments } = sseFrames(await res.text());
    expect(comments).toContain("ping");
    expect(data.at(-1)).toBe("[DONE]");
  });

  it("stops the upstream request when the client goes away", async () => {
    const tag = newTag();
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`go [[stand-in tokens=400 itl=20 tag=${tag}]]`, { stream: true }),
    );
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(first.done).toBe(false);
    await reader.cancel();
    const entry = await eventually(async () => {
      const [e] = await standInRequests(tag);
      return e?.ended_at ? e : null;
    });
    expect(entry.outcome).toBe("client_closed");
    expect(entry.tokens_sent).toBeLessThan(400);
  });
});

describe("request history as the SDKs send it back", () => {
  const toolCall = {
    id: "call_1",
    type: "function",
    function: { name: "get_weather", arguments: '{"location":"Hangzhou"}' },
  };

  it("accepts an SDK's assistant message with its empty client-side fields, without forwarding them", async () => {
    const tag = newTag();
    const res = await call(newUser("oc"), "POST", "/chat/completions", {
      model: "qwen-plus",
      tools: [weatherTool],
      messages: [
        { role: "user", content: "Weather?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [toolCall],
          refusal: null,
          parsed: null,
          annotations: [],
          audio: null,
          function_call: null,
        },
        { role: "tool", tool_call_id: "call_1", content: "21 degrees" },
        { role: "user", content: `So? [[stand-in tokens=2 tag=${tag}]]` },
      ],
    });
    expect(res.status).toBe(200);
    const sent = await upstreamRequest(tag);
    expect(sent.body.messages[1]).toEqual({ role: "assistant", content: null, tool_calls: [toolCall] });
  });

  it("still rejects such a field when it holds a value", async () => {
    const res = await call(newUser("oc"), "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [
        { role: "user", content: "Hi" },
        { role: "assistant", content: "No.", refusal: "I cannot help with that." },
        { role: "user", content: "Why?" },
      ],
    });
    const error = await expectOpenAiError(res, 400, "invalid_request", "invalid_request_error");
    expect(error.message).toContain("refusal");
  });
});

describe("errors in OpenAI's envelope", () => {
  it("relays an upstream rate limit as 429 with Retry-After", async () => {
    const res = await call(
      newUser("oc"),
      "POST",
      "/chat/completions",
      ask(`x [[stand-in error=limit_requests retry_after=30 tag=${newTag()}]]`, { stream: true }),
    );
    expect(res.headers.get("retry-after")).toBe("30");
    await expectOpenAiError(res, 429, "rate_limited", "rate_limit_error");
  });

  it("relays upstream content moderation as 422, and other upstream rejections with their statuses", async () => {
    const user = newUser("oc");
    await expectOpenAiError(
      await call(
        user,
        "POST",
        "/chat/completions",
        ask(`x [[stand-in error=data_inspection_failed tag=${newTag()}]]`),
      ),
      422,
      "content_filtered",
      "invalid_request_error",
    );
    const model = await expectOpenAiError(
      await call(user, "POST", "/chat/completions", { ...ask("x"), model: "qwen-does-not-exist" }),
      400,
      "invalid_request",
      "invalid_request_error",
    );
    expect(model.param).toBe("model");
    const res = await call(
      user,
      "POST",
      "/chat/completions",
      ask(`x [[stand-in error=invalid_api_key tag=${newTag()}]]`),
    );
    const err = await expectOpenAiError(res, 502, "upstream_error", "api_error");
    expect(JSON.stringify(err)).not.toContain(inject("standInApiKey"));
  });

  it("rejects invalid requests with 400 naming the parameter, before calling upstream", async () => {
    const user = newUser("oc");
    const tag = newTag();
    const n = await expectOpenAiError(
      await call(user, "POST", "/chat/completions", ask(`x [[stand-in tag=${tag}]]`, { n: 5 })),
      400,
      "invalid_request",
      "invalid_request_error",
    );
    expect(n.param).toBe("n");
    const temp = await expectOpenAiError(
      await call(user, "POST", "/chat/completions", ask(`x [[stand-in tag=${tag}]]`, { temperature: 3 })),
      400,
      "invalid_request",
      "invalid_request_error",
    );
    expect(temp.param).toBe("temperature");
    await expectOpenAiError(
      await call(user, "POST", "/chat/completions", "{not json"),
      400,
      "invalid_request",
      "invalid_request_error",
    );
    expect(await standInRequests(tag)).toEqual([]);
  });

  it("answers missing or bad tokens with 401 in OpenAI's envelope, keeping the challenge", async () => {
    for (const [path, method] of [
      ["/v1/chat/completions", "POST"],
      ["/v1/models", "GET"],
      ["/v1/models/qwen-plus", "GET"],
    ] as const) {
      const res = await exports.default.fetch(`http://localhost${path}`, {
        method,
        headers: { authorization: "Bearer not-a-token", "content-type": "application/json" },
        body: method === "POST" ? JSON.stringify(ask("x")) : undefined,
      });
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
      await expectOpenAiError(res, 401, "unauthorized", "authentication_error");
    }
  });

  it("leaves the envelope of the other routes alone", async () => {
    const res = await exports.default.fetch("http://localhost/v1/conversations");
    expect(res.status).toBe(401);
    const body = (await res.json()) as ErrorBody;
    expect(body.error.code).toBe("unauthorized");
    expect(body.error).not.toHaveProperty("type");
  });
});

describe("GET /v1/models", () => {
  it("lists the model table, the configured models and the default, in OpenAI's shape", async () => {
    const res = await call(newUser("oc"), "GET", "/models");
    expect(res.status).toBe(200);
    const list = (await res.json()) as {
      object: string;
      data: { id: string; object: string; created: number; owned_by: string }[];
    };
    expect(list.object).toBe("list");
    const ids = list.data.map((m) => m.id);
    expect(new Set(ids).size).toBe(ids.length);
    // `qwen-tiny-context` and `qwen-plus-window-6k` are configured for the test Worker
    // (MODEL_CONTEXT_TOKENS in vitest.config.ts).
    expect(ids).toEqual(
      expect.arrayContaining([
        ...Object.keys(MODEL_CONTEXT_TOKENS),
        "qwen-tiny-context",
        "qwen-plus-window-6k",
        "qwen-plus",
      ]),
    );
    expect(ids).toHaveLength(Object.keys(MODEL_CONTEXT_TOKENS).length + 2);
    for (const model of list.data) {
      expect(model).toEqual({
        id: model.id,
        object: "model",
        created: expect.any(Number),
        owned_by: "alibaba-cloud",
      });
    }
  });

  it("gets one model, or 404 in OpenAI's envelope", async () => {
    const user = newUser("oc");
    const res = await call(user, "GET", "/models/qwen-tiny-context");
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: string }).id).toBe("qwen-tiny-context");
    await expectOpenAiError(
      await call(user, "GET", "/models/gpt-nope"),
      404,
      "not_found",
      "invalid_request_error",
    );
  });
});

describe("the OpenAI stream transform, on upstream bodies the stand-in does not produce", () => {
  const chunk = (content: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 1,
      model: "qwen-x",
      choices: [{ index: 0, delta: { content }, finish_reason: null }],
      usage: null,
      ...extra,
    });

  function bodyOf(text: string): ReadableStream<Uint8Array> {
    const bytes = new TextEncoder().encode(text);
    return new ReadableStream({
      pull(controller) {
        controller.enqueue(bytes);
        controller.close();
      },
    });
  }

  async function run(text: string, includeUsage = false) {
    const outcomes: OpenAiStreamOutcome[] = [];
    const out = toOpenAiEventStream(bodyOf(text), {
      includeUsage,
      pingIntervalMs: 0,
      onEnd: (o) => outcomes.push(o),
    });
    const frames = sseFrames(await new Response(out).text()).data;
    expect(outcomes).toHaveLength(1);
    return { frames, outcome: outcomes[0]! };
  }

  it("turns data that is not JSON into an error frame", async () => {
    const { frames, outcome } = await run(`data: ${chunk("a")}\n\ndata: {oops\n\ndata: [DONE]\n\n`);
    expect(frames).toHaveLength(2);
    expect(JSON.parse(frames[1]!).error).toMatchObject({ code: "upstream_error", type: "api_error" });
    expect(outcome.status).toBe("failed");
  });

  it("turns a clean end without [DONE] into an error frame", async () => {
    const { frames, outcome } = await run(`data: ${chunk("a")}\n\n`);
    expect(JSON.parse(frames.at(-1)!).error.code).toBe("upstream_error");
    expect(frames).not.toContain("[DONE]");
    expect(outcome).toMatchObject({ status: "failed", model: "qwen-x" });
  });

  it("sends [DONE] once and ignores whatever follows it", async () => {
    const { frames, outcome } = await run(
      `data: ${chunk("a")}\n\ndata: [DONE]\n\ndata: ${chunk("b")}\n\ndata: [DONE]\n\n`,
    );
    expect(frames).toEqual([chunk("a"), "[DONE]"]);
    expect(outcome.status).toBe("completed");
  });

  it("clears usage riding on a content chunk unless asked, and reports it either way", async () => {
    const usage = { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 };
    const text = `data: ${chunk("a", { usage })}\n\ndata: [DONE]\n\n`;
    const hidden = await run(text, false);
    expect(JSON.parse(hidden.frames[0]!).usage).toBeNull();
    expect(hidden.outcome.usage).toEqual(usage);
    const shown = await run(text, true);
    expect(JSON.parse(shown.frames[0]!).usage).toEqual(usage);
  });

  it("cancels the upstream body when the client cancels while a read is waiting on it", async () => {
    let cancelled = false;
    let sent = false;
    const outcomes: OpenAiStreamOutcome[] = [];
    const stalled = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (sent) return new Promise<void>(() => {});
          sent = true;
          controller.enqueue(new TextEncoder().encode(`data: ${chunk("a")}\n\n`));
        },
        cancel: () => {
          cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const reader = toOpenAiEventStream(stalled, {
      includeUsage: false,
      pingIntervalMs: 0,
      onEnd: (o) => outcomes.push(o),
    }).getReader();
    expect((await reader.read()).done).toBe(false);
    const waiting = reader.read();
    await reader.cancel("gone");
    expect((await waiting).done).toBe(true);
    expect(cancelled).toBe(true);
    expect(outcomes.map((o) => o.status)).toEqual(["cancelled"]);
  });

  it("cancels the upstream body when the client cancels before reading", async () => {
    let cancelled = false;
    const outcomes: OpenAiStreamOutcome[] = [];
    // An upstream that has not sent anything yet.
    const silent = new ReadableStream<Uint8Array>(
      {
        pull: () => new Promise<void>(() => {}),
        cancel: () => {
          cancelled = true;
        },
      },
      { highWaterMark: 0 },
    );
    const out = toOpenAiEventStream(silent, {
      includeUsage: false,
      pingIntervalMs: 0,
      onEnd: (o) => outcomes.push(o),
    });
    await out.cancel("gone");
    expect(cancelled).toBe(true);
    expect(outcomes.map((o) => o.status)).toEqual(["cancelled"]);
  });
});
