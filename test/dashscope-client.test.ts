import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { UpstreamError, upstreamErrorFromStreamError } from "../src/chat/upstream-error";
import { loadConfig } from "../src/config";
import {
  createDashScopeClient,
  DashScopeClient,
  type DashScopeClientOptions,
  RETRY_AFTER_MAX_WAIT_MS,
} from "../src/dashscope/client";
import { UpstreamFailure } from "../src/dashscope/errors";
import { abortableSleep, backoffDelayMs, parseRetryAfterMs } from "../src/dashscope/retry";
import type { ChatCompletionChunk } from "../src/dashscope/types";

const baseUrl = inject("standInBaseUrl");
const apiKey = inject("standInApiKey");
const controlUrl = inject("standInControlUrl");

/** Upper bound for two 300 ms first-byte timeouts; loose enough for a loaded CI machine. */
const GENEROUS_TIMEOUT_BOUND_MS = 5_000;

interface LogEntry {
  attempt: number;
  status: number;
  outcome: string;
  body: Record<string, unknown>;
}

/** A tag no other test (or earlier run against the same stand-in) uses, so logs and `fail_times` are per test. */
const newTag = (name: string) => `${name}-${crypto.randomUUID()}`;

/** A request whose last user message carries the stand-in directive. */
function chat(directive: string, extra: Record<string, unknown> = {}) {
  return {
    model: "qwen-plus",
    messages: [{ role: "user", content: `Say hello. [[stand-in ${directive}]]` }],
    ...extra,
  };
}

/** The stand-in's log of every attempt carrying `tag`. */
async function attemptsOf(tag: string): Promise<LogEntry[]> {
  const res = await fetch(`${controlUrl}/__stand-in/requests?tag=${encodeURIComponent(tag)}`);
  expect(res.status).toBe(200);
  return (await res.json()) as LogEntry[];
}

/** A client whose backoff waits are recorded instead of slept, so no test depends on timing. */
function clientWith(overrides: Partial<DashScopeClientOptions> = {}) {
  const delays: number[] = [];
  const client = new DashScopeClient({
    baseUrl,
    apiKey,
    firstByteTimeoutMs: 5_000,
    maxAttempts: 3,
    retryBaseMs: 100,
    retryMaxMs: 1_000,
    sleep: async (ms) => {
      delays.push(ms);
    },
    ...overrides,
  });
  return { client, delays };
}

/** The rejection of `promise`, which must reject. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected a rejection");
}

/** The client's rejection, which must be an {@link UpstreamFailure}, mapped to our error as callers do. */
async function upstreamRejection(promise: Promise<unknown>): Promise<UpstreamError> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(UpstreamFailure);
  return new UpstreamError(error as UpstreamFailure);
}

describe("DashScopeClient.stream", () => {
  it("streams chunks and the usage chunk, forcing include_usage even when the caller turned it off", async () => {
    const tag = newTag("stream-ok");
    const { client } = clientWith();
    const stream = await client.stream(
      chat(`tokens=5 tag=${tag}`, { stream_options: { include_usage: false }, stream: false }),
    );
    expect(stream.attempts).toBe(1);
    expect(stream.firstByteAt).toBeGreaterThanOrEqual(stream.startedAt);

    const chunks: ChatCompletionChunk[] = [];
    let done = false;
    for await (const event of stream.events()) {
      if (event.type === "chunk") chunks.push(event.chunk);
      else if (event.type === "done") done = true;
      else throw new Error(`unexpected stream error ${event.error.code}`);
    }
    expect(done).toBe(true);
    const content = chunks.flatMap((c) => c.choices.map((choice) => choice.delta.content ?? "")).join("");
    expect(content.length).toBeGreaterThan(0);
    const usage = chunks.at(-1);
    expect(usage?.choices).toEqual([]);
    expect(usage?.usage?.completion_tokens).toBeGreaterThan(0);

    const log = await attemptsOf(tag);
    expect(log).toHaveLength(1);
    expect(log[0]!.body.stream).toBe(true);
    expect(log[0]!.body.stream_options).toEqual({ include_usage: true });
  });

  it("keeps the caller's other stream_options", async () => {
    const tag = newTag("stream-options");
    const { client } = clientWith();
    const stream = await client.stream(
      chat(`tokens=1 tag=${tag}`, { stream_options: { include_usage: false, extra: 1 } }),
    );
    await stream.body.cancel();
    const [entry] = await attemptsOf(tag);
    expect(entry!.body.stream_options).toEqual({ include_usage: true, extra: 1 });
  });

  it("hands back the whole SSE body, first chunk included", async () => {
    const tag = newTag("stream-body");
    const { client } = clientWith();
    const stream = await client.stream(chat(`tokens=3 tag=${tag}`));
    const text = await new Response(stream.body).text();
    expect(text.startsWith("data:")).toBe(true);
    expect(text).toContain('"role":"assistant"');
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("answers a rejected key with 502 upstream_error, once, without the key anywhere", async () => {
    const tag = newTag("bad-key");
    const secret = "sk-this-key-is-wrong-0123456789";
    const { client } = clientWith({ apiKey: secret });
    const error = await upstreamRejection(client.stream(chat(`tag=${tag}`)));
    expect([error.status, error.code, error.retryable, error.upstreamStatus]).toEqual([
      502,
      "upstream_error",
      false,
      401,
    ]);
    expect(error.attempts).toBe(1);
    const everything = [
      error.message,
      error.stack ?? "",
      JSON.stringify(error),
      JSON.stringify(error.toBody()),
      JSON.stringify({ ...error }),
    ];
    for (const text of everything) expect(text).not.toContain(secret);
    expect(await attemptsOf(tag)).toHaveLength(1);
  });

  it.each(["service_unavailable", "internal_error", "limit_burst_rate"] as const)(
    "retries %s before the first byte and succeeds on attempt 3",
    async (name) => {
      const tag = newTag(`retry-${name}`);
      const { client, delays } = clientWith({ maxAttempts: 3 });
      const stream = await client.stream(chat(`fail_times=2 error=${name} tokens=2 tag=${tag}`));
      expect(stream.attempts).toBe(3);
      await stream.body.cancel();
      const log = await attemptsOf(tag);
      expect(log.map((e) => e.attempt)).toEqual([1, 2, 3]);
      const failed = { service_unavailable: 503, internal_error: 500, limit_burst_rate: 429 }[name];
      expect(log.map((e) => e.status)).toEqual([failed, failed, 200]);
      expect(delays).toHaveLength(2);
    },
  );

  it("gives up after maxAttempts with 502 upstream_error", async () => {
    const tag = newTag("retry-exhausted");
    const { client, delays } = clientWith({ maxAttempts: 2 });
    const error = await upstreamRejection(
      client.stream(chat(`fail_times=2 error=service_unavailable tag=${tag}`)),
    );
    expect([error.status, error.code, error.upstreamStatus, error.attempts]).toEqual([
      502,
      "upstream_error",
      503,
      2,
    ]);
    expect((await attemptsOf(tag)).map((e) => e.attempt)).toEqual([1, 2]);
    expect(delays).toHaveLength(1);
  });

  it.each([0, 1])("waits exactly Retry-After (%i s) before retrying a rate limit", async (seconds) => {
    const tag = newTag("retry-after");
    const { client, delays } = clientWith({ random: () => 0.999 });
    const stream = await client.stream(
      chat(`fail_times=1 error=limit_requests retry_after=${seconds} tokens=1 tag=${tag}`),
    );
    await stream.body.cancel();
    expect(stream.attempts).toBe(2);
    expect(delays).toEqual([seconds * 1000]);
  });

  it("ends a persistent rate limit with 429 rate_limited and Retry-After", async () => {
    const tag = newTag("rate-limited");
    const { client, delays } = clientWith({ maxAttempts: 2 });
    const error = await upstreamRejection(
      client.stream(chat(`error=limit_requests retry_after=1 tag=${tag}`)),
    );
    expect([error.status, error.code, error.retryable, error.attempts]).toEqual([
      429,
      "rate_limited",
      true,
      2,
    ]);
    expect(delays).toEqual([1000]);
    const response = error.toResponse();
    expect(response.status).toBe(429);
    expect(response.headers.get("Retry-After")).toBe("1");
    expect(await response.json()).toMatchObject({ error: { code: "rate_limited" } });
    expect(await attemptsOf(tag)).toHaveLength(2);
  });

  it("does not wait out a Retry-After longer than it is willing to hold the caller", async () => {
    const tag = newTag("retry-after-long");
    const seconds = RETRY_AFTER_MAX_WAIT_MS / 1000 + 10;
    const { client, delays } = clientWith({ maxAttempts: 3 });
    const error = await upstreamRejection(
      client.stream(chat(`error=limit_requests retry_after=${seconds} tag=${tag}`)),
    );
    expect([error.code, error.attempts]).toEqual(["rate_limited", 1]);
    expect(error.toResponse().headers.get("Retry-After")).toBe(String(seconds));
    expect(delays).toEqual([]);
    expect(await attemptsOf(tag)).toHaveLength(1);
  });

  it.each([
    ["insufficient_quota", 429, "rate_limited", undefined],
    ["data_inspection_failed", 422, "content_filtered", undefined],
    ["invalid_parameter", 400, "invalid_request", undefined],
    ["model_not_found", 400, "invalid_request", "model"],
    ["access_denied", 502, "upstream_error", undefined],
    ["invalid_api_key", 502, "upstream_error", undefined],
    ["arrearage", 502, "upstream_error", undefined],
  ])("does not retry %s (→ %i %s)", async (name, status, code, param) => {
    const tag = newTag(`no-retry-${name}`);
    const { client, delays } = clientWith({ maxAttempts: 3 });
    const error = await upstreamRejection(client.stream(chat(`error=${name} tag=${tag}`)));
    expect([error.status, error.code, error.param, error.retryable, error.attempts]).toEqual([
      status,
      code,
      param,
      false,
      1,
    ]);
    expect(error.phase).toBe("pre-stream");
    expect(delays).toEqual([]);
    expect(await attemptsOf(tag)).toHaveLength(1);
  });

  it("times out an attempt that sends no headers, retries, then answers 504 upstream_timeout", async () => {
    const tag = newTag("hang");
    const { client, delays } = clientWith({ firstByteTimeoutMs: 300, maxAttempts: 2 });
    const started = Date.now();
    const error = await upstreamRejection(client.stream(chat(`hang tag=${tag}`)));
    // The timeout is the feature: two 300 ms attempts must be over well within this generous bound.
    expect(Date.now() - started).toBeLessThan(GENEROUS_TIMEOUT_BOUND_MS);
    expect([error.status, error.code, error.retryable, error.attempts]).toEqual([
      504,
      "upstream_timeout",
      true,
      2,
    ]);
    expect(delays).toHaveLength(1);
    expect(await attemptsOf(tag)).toHaveLength(2);
  });

  it("times out an attempt whose 200 headers arrive without a body byte", async () => {
    const tag = newTag("hang-body");
    const { client } = clientWith({ firstByteTimeoutMs: 300, maxAttempts: 2 });
    const started = Date.now();
    const error = await upstreamRejection(client.stream(chat(`hang_body tag=${tag}`)));
    expect(Date.now() - started).toBeLessThan(GENEROUS_TIMEOUT_BOUND_MS);
    expect([error.status, error.code, error.attempts]).toEqual([504, "upstream_timeout", 2]);
    expect(await attemptsOf(tag)).toHaveLength(2);
  });

  it("retries a connection failure, then answers 502 upstream_error", async () => {
    const { client, delays } = clientWith({
      baseUrl: "http://127.0.0.1:9/compatible-mode/v1",
      maxAttempts: 3,
    });
    const error = await upstreamRejection(client.stream(chat("tokens=1")));
    expect([error.status, error.code, error.retryable, error.attempts, error.upstreamStatus]).toEqual([
      502,
      "upstream_error",
      true,
      3,
      null,
    ]);
    expect(delays).toHaveLength(2);
  });

  it("backs off exponentially with full jitter, capped at retryMaxMs", async () => {
    const tag = newTag("backoff");
    const { client, delays } = clientWith({
      maxAttempts: 5,
      retryBaseMs: 100,
      retryMaxMs: 300,
      random: () => 0.5,
    });
    const error = await upstreamRejection(client.stream(chat(`error=service_unavailable tag=${tag}`)));
    expect(error.attempts).toBe(5);
    expect(delays).toEqual([50, 100, 150, 150]);
    const { client: full, delays: fullDelays } = clientWith({
      maxAttempts: 4,
      retryBaseMs: 10,
      retryMaxMs: 10_000,
      random: () => 0.999,
    });
    await rejection(full.stream(chat(`error=internal_error tag=${newTag("backoff-full")}`)));
    expect(fullDelays.map((d) => Math.round(d))).toEqual([10, 20, 40]);
  });

  it("stops at once when the caller aborts during the backoff wait", async () => {
    const tag = newTag("abort-backoff");
    const controller = new AbortController();
    const reason = new Error("client went away");
    let waits = 0;
    const { client } = clientWith({
      maxAttempts: 3,
      retryBaseMs: 600_000,
      retryMaxMs: 600_000,
      random: () => 1,
      // The real wait (ten minutes), aborted as soon as it starts.
      sleep: (ms, signal) => {
        waits++;
        const sleeping = abortableSleep(ms, signal);
        controller.abort(reason);
        return sleeping;
      },
    });
    const error = await rejection(
      client.stream(chat(`error=service_unavailable tag=${tag}`), { signal: controller.signal }),
    );
    expect(error).toBe(reason);
    expect(waits).toBe(1);
    expect(await attemptsOf(tag)).toHaveLength(1);
  });

  it("stops at once when the caller aborts an attempt in flight", async () => {
    const tag = newTag("abort-inflight");
    const controller = new AbortController();
    const reason = new Error("client went away");
    const { client } = clientWith({ firstByteTimeoutMs: 600_000 });
    const pending = rejection(client.stream(chat(`hang tag=${tag}`), { signal: controller.signal }));
    // Abort once the stand-in has the request, so the fetch is really in flight.
    while ((await attemptsOf(tag)).length === 0) await abortableSleep(20);
    controller.abort(reason);
    expect(await pending).toBe(reason);
    expect(await attemptsOf(tag)).toHaveLength(1);
  });

  it("rejects with the reason when the signal is already aborted, sending nothing", async () => {
    const tag = newTag("abort-before");
    const { client } = clientWith();
    const reason = new Error("already gone");
    const error = await rejection(client.stream(chat(`tag=${tag}`), { signal: AbortSignal.abort(reason) }));
    expect(error).toBe(reason);
    expect(await attemptsOf(tag)).toHaveLength(0);
  });
});

describe("DashScopeClient.stream after the first byte", () => {
  it.each([
    ["openai", 422, "content_filtered"],
    ["native", 429, "rate_limited"],
  ] as const)(
    "hands a %s mid-stream error to the caller as an event, never retrying",
    async (shape, status, code) => {
      const tag = newTag(`midstream-${shape}`);
      const { client, delays } = clientWith();
      const stream = await client.stream(chat(`tokens=6 midstream=${shape} after=2 tag=${tag}`));
      const mapped: UpstreamError[] = [];
      let chunks = 0;
      for await (const event of stream.events()) {
        if (event.type === "chunk") chunks++;
        if (event.type === "error") mapped.push(upstreamErrorFromStreamError(event.error));
      }
      expect(chunks).toBeGreaterThan(0);
      expect(mapped).toHaveLength(1);
      expect(mapped[0]).toMatchObject({ status, code, phase: "mid-stream" });
      expect(delays).toEqual([]);
      expect(await attemptsOf(tag)).toHaveLength(1);
    },
  );

  it("does not retry a connection lost after the first byte: the body errors or ends early", async () => {
    const tag = newTag("disconnect");
    const { client } = clientWith();
    const stream = await client.stream(chat(`tokens=20 disconnect=2 tag=${tag}`));
    expect(stream.attempts).toBe(1);
    let text = "";
    const outcome = await new Response(stream.body)
      .text()
      .then((t) => {
        text = t;
        return "ended";
      })
      .catch(() => "errored");
    if (outcome === "ended") expect(text).not.toContain("[DONE]");
    expect(await attemptsOf(tag)).toHaveLength(1);
  });

  it("reports the x-request-id of the attempt that answered", async () => {
    const tag = newTag("request-id");
    const { client } = clientWith();
    const stream = await client.stream(chat(`fail_times=1 error=internal_error tokens=1 tag=${tag}`));
    await stream.body.cancel();
    const log = (await attemptsOf(tag)) as (LogEntry & { request_id: string })[];
    expect(log.map((e) => e.status)).toEqual([500, 200]);
    expect(stream.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(stream.requestId).toBe(log[1]!.request_id);
  });
});

describe("DashScopeClient.complete", () => {
  it("returns the non-streaming completion, forcing stream:false and dropping stream_options", async () => {
    const tag = newTag("complete");
    const { client } = clientWith();
    const result = await client.complete(
      chat(`tokens=4 tag=${tag}`, { stream: true, stream_options: { include_usage: true } }),
    );
    expect(result.attempts).toBe(1);
    expect(result.completion.object).toBe("chat.completion");
    expect(result.completion.choices[0]?.message.role).toBe("assistant");
    expect(result.completion.choices[0]?.message.content?.length).toBeGreaterThan(0);
    expect(result.completion.choices[0]?.finish_reason).toBe("stop");
    expect(result.completion.usage?.completion_tokens).toBeGreaterThan(0);
    const [entry] = await attemptsOf(tag);
    expect(entry!.body.stream).toBe(false);
    expect(entry!.body).not.toHaveProperty("stream_options");
  });

  it("retries and maps errors like stream()", async () => {
    const tag = newTag("complete-retry");
    const { client, delays } = clientWith({ maxAttempts: 3 });
    const result = await client.complete(chat(`fail_times=1 error=internal_error tokens=2 tag=${tag}`));
    expect(result.attempts).toBe(2);
    expect(delays).toHaveLength(1);
    const error = await upstreamRejection(
      client.complete(chat(`error=model_not_found tag=${newTag("complete-404")}`)),
    );
    expect([error.status, error.code, error.param]).toEqual([400, "invalid_request", "model"]);
  });
});

describe("createDashScopeClient", () => {
  it("builds a working client from the Worker's configuration", async () => {
    const tag = newTag("from-config");
    const client = createDashScopeClient(loadConfig(env));
    const stream = await client.stream(chat(`tokens=2 tag=${tag}`));
    const types: string[] = [];
    for await (const event of stream.events()) types.push(event.type);
    expect(types.at(-1)).toBe("done");
    expect(await attemptsOf(tag)).toHaveLength(1);
  });
});

describe("retry helpers", () => {
  it("reads Retry-After as seconds or as an HTTP date", () => {
    const now = Date.parse("2026-01-01T00:00:00Z");
    expect(parseRetryAfterMs("3", now)).toBe(3_000);
    expect(parseRetryAfterMs(" 0 ", now)).toBe(0);
    expect(parseRetryAfterMs("Thu, 01 Jan 2026 00:00:05 GMT", now)).toBe(5_000);
    expect(parseRetryAfterMs("Wed, 31 Dec 2025 23:59:00 GMT", now)).toBe(0);
    expect(parseRetryAfterMs("soon", now)).toBeNull();
    expect(parseRetryAfterMs("-1", now)).toBeNull();
    expect(parseRetryAfterMs(null, now)).toBeNull();
  });

  it("scales the jitter by min(max, base * 2^(attempt-1))", () => {
    expect([1, 2, 3, 4, 5].map((n) => backoffDelayMs(n, 250, 1_500, () => 1))).toEqual([
      250, 500, 1_000, 1_500, 1_500,
    ]);
    expect(backoffDelayMs(3, 250, 1_500, () => 0)).toBe(0);
  });

  it("wakes early, with the reason, when its signal aborts", async () => {
    const reason = new Error("stop");
    const sleeping = abortableSleep(600_000, AbortSignal.abort(reason));
    await expect(sleeping).rejects.toBe(reason);
  });
});

describe("DashScopeClient.stream's onHeaders", () => {
  it("is called at DashScope's 200, before its first byte, which resolves the stream", async () => {
    const tag = newTag("headers-first");
    const { client } = clientWith();
    const t0 = Date.now();
    let headersAt: number | null = null;
    const stream = await client.stream(chat(`headers_first ttft=600 tokens=2 tag=${tag}`), {
      onHeaders: () => {
        headersAt = Date.now() - t0;
      },
    });
    expect(headersAt).not.toBeNull();
    expect(headersAt!).toBeLessThan(500);
    expect(stream.firstByteAt - t0).toBeGreaterThanOrEqual(590);
    const text = await new Response(stream.body).text();
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
  });

  it("is never called when every attempt is refused before a 200", async () => {
    const tag = newTag("headers-refused");
    const { client } = clientWith();
    let calls = 0;
    const error = await upstreamRejection(
      client.stream(chat(`error=service_unavailable tag=${tag}`), { onHeaders: () => calls++ }),
    );
    expect([error.upstreamStatus, error.attempts, calls]).toEqual([503, 3, 0]);
  });

  it("is called again by a retry after a 200 whose body never started", async () => {
    const tag = newTag("headers-then-retry");
    const { client } = clientWith({ firstByteTimeoutMs: 300 });
    let calls = 0;
    const stream = await client.stream(chat(`fail_times=1 hang_body tokens=2 tag=${tag}`), {
      onHeaders: () => calls++,
    });
    expect([stream.attempts, calls]).toEqual([2, 2]);
    await stream.body.cancel();
    expect((await attemptsOf(tag)).map((e) => e.attempt)).toEqual([1, 2]);
  });
});
