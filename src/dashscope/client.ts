import type { Config } from "../config";
import { parseWellFormedJson } from "../text/well-formed";
import {
  classifyUpstreamError,
  parseUpstreamErrorBody,
  UPSTREAM_IDLE_CODE,
  UPSTREAM_NETWORK_CODE,
  UPSTREAM_TIMEOUT_CODE,
  type UpstreamFailure,
} from "./errors";
import { readWithin, UpstreamIdleTimeout } from "./idle-watchdog";
import { abortableSleep, backoffDelayMs, parseRetryAfterMs } from "./retry";
import { decodeDashScopeStream } from "./stream";
import type { ChatCompletion, StreamEvent } from "./types";

/** A Chat Completions request body as DashScope takes it (validated upstream of this client). */
export type ChatCompletionRequestBody = Record<string, unknown> & { model: string; messages: unknown[] };

/** Upper bound of the exponential backoff when the options set none. */
export const DEFAULT_RETRY_MAX_MS = 8_000;
/**
 * Longest upstream `Retry-After` we wait out ourselves. Beyond it the 429 goes straight to the
 * caller (with its `Retry-After`), rather than holding a mobile request open.
 */
export const RETRY_AFTER_MAX_WAIT_MS = 20_000;

const CHAT_COMPLETIONS_PATH = "/chat/completions";

export interface DashScopeClientOptions {
  /** e.g. `https://dashscope-intl.aliyuncs.com/compatible-mode/v1` (no trailing slash needed). */
  baseUrl: string;
  apiKey: string;
  /** Budget for response headers plus the first body byte of one attempt. */
  firstByteTimeoutMs: number;
  /**
   * Once the body has started, the longest wait for more of it: for a non-streamed answer, any
   * bytes; for `events()`, a complete event (see `IdleWatchdog`). `stream()`'s `read()` and `body`
   * leave it to their consumer, which decodes the events. `0` or absent: no limit.
   */
  idleTimeoutMs?: number;
  /** Total attempts, including the first. */
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs?: number;
  fetch?: typeof fetch;
  /** For tests: replaces the backoff wait. Must reject with `signal.reason` when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** For tests: the jitter source, `[0, 1)`. */
  random?: () => number;
}

/** A DashScope answer stream whose first body byte has arrived. */
export interface UpstreamStream {
  /** DashScope's `x-request-id` of the successful attempt. */
  requestId: string | null;
  attempts: number;
  /** `Date.now()` when `stream()` was called. */
  startedAt: number;
  /** `Date.now()` when the first body byte arrived. */
  firstByteAt: number;
  /** The whole SSE body, first chunk included. Read it once: either this, `events()` or `read()`. */
  readonly body: ReadableStream<Uint8Array>;
  /**
   * The body's chunks, first chunk included, without a stream in between (the hot path: one
   * promise per network read). Resolves `null` at the end; `cancel()` closes the connection.
   */
  read(): Promise<Uint8Array | null>;
  cancel(reason?: unknown): Promise<void>;
  /** Decodes `body` into chunk/error/done events (consumes `body`). */
  events(): AsyncGenerator<StreamEvent>;
}

/** A non-streaming answer. */
export interface UpstreamCompletion {
  completion: ChatCompletion;
  requestId: string | null;
  attempts: number;
}

interface FirstByte {
  requestId: string | null;
  first: Uint8Array;
  reader: ReadableStreamDefaultReader<Uint8Array>;
  firstByteAt: number;
  /** Detaches the caller's signal from this attempt's fetch once the body is finished. */
  release: () => void;
}

type AttemptResult =
  | ({ ok: true } & FirstByte)
  | { ok: false; error: UpstreamFailure; upstreamRetryAfterMs: number | null };

/**
 * The DashScope Chat Completions client: one POST per attempt, retries (with backoff and
 * `Retry-After`) only until the first body byte arrives; failures reject as {@link UpstreamFailure}s (`./errors`).
 */
export class DashScopeClient {
  private readonly url: string;
  private readonly doFetch: (input: string, init: RequestInit) => Promise<Response>;
  private readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  private readonly random: () => number;

  constructor(private readonly options: DashScopeClientOptions) {
    this.url = options.baseUrl.replace(/\/+$/, "") + CHAT_COMPLETIONS_PATH;
    const injected = options.fetch;
    // workerd's global fetch throws "Illegal invocation" when called as a method of another object.
    this.doFetch = injected ? (input, init) => injected(input, init) : (input, init) => fetch(input, init);
    this.sleep = options.sleep ?? abortableSleep;
    this.random = options.random ?? Math.random;
  }

  /**
   * Starts a streaming completion. Forces `stream: true` and `stream_options.include_usage: true`
   * (usage only arrives in compatible mode when asked for, PROTOCOL.md §2.3). Resolves once the
   * first body byte of a 200 has arrived; rejects with an {@link UpstreamFailure}, or with the
   * signal's reason when `init.signal` aborts. `init.onHeaders` is called when an attempt's 200
   * response headers arrive (DashScope has accepted the request; its first token may be seconds
   * away): the moment a caller can start its own response. A later attempt may call it again.
   */
  async stream(
    request: ChatCompletionRequestBody,
    init: { signal?: AbortSignal; onHeaders?: () => void } = {},
  ): Promise<UpstreamStream> {
    const startedAt = Date.now();
    const callerOptions = request.stream_options;
    const body = {
      ...request,
      stream: true,
      stream_options: {
        ...(typeof callerOptions === "object" && callerOptions !== null && !Array.isArray(callerOptions)
          ? callerOptions
          : {}),
        include_usage: true,
      },
    };
    const sent = await this.send(JSON.stringify(body), "text/event-stream", init.signal, init.onHeaders);
    let first: Uint8Array | null = sent.first;
    let stream: ReadableStream<Uint8Array> | null = null;
    const bodyStream = () => (stream ??= joinFirstChunk(sent.first, sent.reader, sent.release));
    return {
      requestId: sent.requestId,
      attempts: sent.attempts,
      startedAt,
      firstByteAt: sent.firstByteAt,
      get body() {
        return bodyStream();
      },
      events: () => decodeDashScopeStream(bodyStream(), { idleTimeoutMs: this.options.idleTimeoutMs ?? 0 }),
      read: async () => {
        if (first) {
          const chunk = first;
          first = null;
          return chunk;
        }
        try {
          const { done, value } = await sent.reader.read();
          if (done) sent.release();
          return done ? null : value;
        } catch (error) {
          sent.release();
          throw error;
        }
      },
      cancel: async (reason) => {
        sent.release();
        await sent.reader.cancel(reason).catch(() => {});
      },
    };
  }

  /**
   * A non-streaming completion (`stream: false`, no `stream_options`). The first-byte timeout and
   * retries apply as for {@link stream}; once the body has started it is read to the end, with no
   * more than `idleTimeoutMs` between its pieces. DashScope refuses some requests unless streamed
   * (`requiresStreaming` in `./stream-only`): callers check it first and use {@link stream} for those.
   */
  async complete(
    request: ChatCompletionRequestBody,
    init: { signal?: AbortSignal } = {},
  ): Promise<UpstreamCompletion> {
    const { stream_options: _dropped, ...rest } = request;
    const sent = await this.send(JSON.stringify({ ...rest, stream: false }), "application/json", init.signal);
    const decoder = new TextDecoder();
    let text = decoder.decode(sent.first, { stream: true });
    try {
      for (let since = Date.now(); ; since = Date.now()) {
        const { done, value } = await readWithin(sent.reader, this.options.idleTimeoutMs ?? 0, since);
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
      text += decoder.decode();
    } catch (err) {
      if (init.signal?.aborted) throw init.signal.reason;
      const code = err instanceof UpstreamIdleTimeout ? UPSTREAM_IDLE_CODE : UPSTREAM_NETWORK_CODE;
      throw this.failure({ status: null, code }, sent.requestId, sent.attempts);
    } finally {
      sent.release();
    }
    let json: unknown;
    try {
      json = parseWellFormedJson(text);
    } catch {
      json = null;
    }
    const completion = json as ChatCompletion | null;
    if (!completion || typeof completion !== "object" || !Array.isArray(completion.choices)) {
      // A 200 that is not a completion: an error body in disguise, or something unreadable.
      const parsed = parseUpstreamErrorBody(text);
      throw this.failure({ status: 200, ...parsed }, parsed.requestId ?? sent.requestId, sent.attempts);
    }
    return { completion, requestId: sent.requestId, attempts: sent.attempts };
  }

  /** Runs attempts until one yields a first body byte, a failure is final, or attempts run out. */
  private async send(
    body: string,
    accept: string,
    signal: AbortSignal | undefined,
    onHeaders?: () => void,
  ): Promise<FirstByte & { attempts: number }> {
    const maxAttempts = Math.max(1, Math.floor(this.options.maxAttempts));
    const retryMaxMs = this.options.retryMaxMs ?? DEFAULT_RETRY_MAX_MS;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) throw signal.reason;
      const result = await this.attempt(body, accept, signal, onHeaders);
      if (result.ok) return { ...result, attempts: attempt };
      const { error, upstreamRetryAfterMs } = result;
      error.attempts = attempt;
      if (!error.retryable || attempt >= maxAttempts) throw error;
      let delayMs: number;
      if (upstreamRetryAfterMs !== null) {
        if (upstreamRetryAfterMs > RETRY_AFTER_MAX_WAIT_MS) throw error;
        delayMs = upstreamRetryAfterMs;
      } else {
        delayMs = backoffDelayMs(attempt, this.options.retryBaseMs, retryMaxMs, this.random);
      }
      await this.sleep(delayMs, signal);
    }
  }

  /** One POST, bounded by the first-byte timeout. Throws only for the caller's abort. */
  private async attempt(
    body: string,
    accept: string,
    signal: AbortSignal | undefined,
    onHeaders?: () => void,
  ): Promise<AttemptResult> {
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(signal?.reason);
    signal?.addEventListener("abort", onCallerAbort, { once: true });
    const release = () => signal?.removeEventListener("abort", onCallerAbort);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort(new Error("first byte timeout"));
    }, this.options.firstByteTimeoutMs);

    const transportFailure = (): AttemptResult => {
      release();
      if (signal?.aborted) throw signal.reason;
      const code = timedOut ? UPSTREAM_TIMEOUT_CODE : UPSTREAM_NETWORK_CODE;
      return {
        ok: false,
        error: classifyUpstreamError({ status: null, code, phase: "pre-stream" }),
        upstreamRetryAfterMs: null,
      };
    };

    try {
      let response: Response;
      try {
        response = await untilAborted(
          this.doFetch(this.url, {
            method: "POST",
            headers: {
              Authorization: `Bearer ${this.options.apiKey}`,
              "Content-Type": "application/json",
              Accept: accept,
            },
            body,
            signal: controller.signal,
          }),
          controller.signal,
        );
      } catch {
        return transportFailure();
      }
      const headerRequestId = response.headers.get("x-request-id");

      if (!response.ok) {
        let text = "";
        try {
          text = await untilAborted(response.text(), controller.signal);
        } catch {
          if (signal?.aborted || timedOut) return transportFailure();
        }
        release();
        const parsed = parseUpstreamErrorBody(text);
        const upstreamRetryAfterMs = parseRetryAfterMs(response.headers.get("retry-after"), Date.now());
        const error = classifyUpstreamError({
          status: response.status,
          code: parsed.code,
          type: parsed.type,
          message: this.redactKey(parsed.message),
          requestId: parsed.requestId ?? headerRequestId,
          retryAfterMs: upstreamRetryAfterMs,
          phase: "pre-stream",
        });
        return { ok: false, error, upstreamRetryAfterMs };
      }

      if (!response.body) return transportFailure();
      onHeaders?.();
      const reader = response.body.getReader();
      try {
        for (;;) {
          const { done, value } = await untilAborted(reader.read(), controller.signal);
          if (done) return transportFailure(); // 200 and closed without a byte: nothing was answered
          if (value.byteLength > 0) {
            return {
              ok: true,
              requestId: headerRequestId,
              first: value,
              reader,
              firstByteAt: Date.now(),
              release,
            };
          }
        }
      } catch {
        reader.cancel().catch(() => {});
        return transportFailure();
      }
    } finally {
      clearTimeout(timer);
    }
  }

  private redactKey(message: string | null): string | null {
    const key = this.options.apiKey;
    return message !== null && key !== "" ? message.split(key).join("[redacted]") : message;
  }

  /** An error found inside a 200 response, after the first byte (so never retried here). */
  private failure(
    input: { status: number | null; code?: string | null; type?: string | null; message?: string | null },
    requestId: string | null,
    attempts: number,
  ): UpstreamFailure {
    const error = classifyUpstreamError({
      ...input,
      message: this.redactKey(input.message ?? null),
      requestId,
      phase: "mid-stream",
    });
    error.attempts = attempts;
    return error;
  }
}

/**
 * Settles with `promise`, or rejects as soon as `signal` aborts: a pending fetch or body read must
 * not outlive the first-byte timeout even if the runtime is slow to propagate the abort.
 */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}

/** The body again, with the already-read first chunk in front. */
function joinFirstChunk(
  first: Uint8Array,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  onFinished: () => void,
): ReadableStream<Uint8Array> {
  let pending: Uint8Array | null = first;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        if (pending) {
          controller.enqueue(pending);
          pending = null;
          return;
        }
        try {
          const { done, value } = await reader.read();
          if (done) {
            onFinished();
            controller.close();
          } else {
            controller.enqueue(value);
          }
        } catch (error) {
          onFinished();
          controller.error(error);
        }
      },
      cancel(reason) {
        onFinished();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}

/** The client for this deployment's configuration. */
export function createDashScopeClient(config: Config): DashScopeClient {
  return new DashScopeClient({
    baseUrl: config.dashscopeBaseUrl,
    apiKey: config.dashscopeApiKey,
    firstByteTimeoutMs: config.upstreamFirstByteTimeoutMs,
    idleTimeoutMs: config.upstreamIdleTimeoutMs,
    maxAttempts: config.upstreamMaxAttempts,
    retryBaseMs: config.upstreamRetryBaseMs,
  });
}
