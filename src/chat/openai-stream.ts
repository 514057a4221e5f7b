import { UpstreamIdleTimeout } from "../dashscope/idle-watchdog";
import { decodeDashScopeStream } from "../dashscope/stream";
import type { ChatCompletionChunk, StreamEvent, Usage } from "../dashscope/types";
import { ApiError } from "../errors/api-error";
import { eventBytes } from "../sse/encode";
import { Heartbeat, PING } from "../sse/heartbeat";
import { toOpenAiErrorBody } from "./openai-error";
import { generatedTexts, type ReplyLimit } from "./reply-limit";
import { fromUpstreamFailure, upstreamErrorFromStreamError } from "./upstream-error";

const DONE_FRAME = eventBytes({ data: "[DONE]" });

/** How an OpenAI-compatible stream ended. */
export interface OpenAiStreamOutcome {
  /**
   * `completed`: upstream sent `[DONE]` and so did we. `failed`: an error frame was sent instead
   * (mid-stream error, malformed data, truncation). `cancelled`: the client went away first.
   */
  status: "completed" | "failed" | "cancelled";
  /** The upstream usage chunk's `usage` when it arrived (always requested, forwarded or not). */
  usage: Usage | null;
  /** `model` of the first chunk, as the upstream reported it. */
  model: string | null;
  /** The error sent to the client when `status` is `failed`. */
  error: ApiError | null;
  /**
   * Whether the upstream stream was ever open (its body promise resolved). `false`: the call
   * failed or was cancelled before DashScope's first byte, so nothing was generated.
   */
  opened: boolean;
  /**
   * `true` when the answer reached the reply limit and was ended here like a `max_tokens` cut
   * (status `completed`, `usage` null: the caller settles an estimate).
   */
  cut: boolean;
}

/** Options of {@link toOpenAiEventStream}. */
export interface OpenAiStreamOptions {
  /**
   * Receives the text of every content, reasoning and tool-call delta (name and arguments
   * fragments), to estimate usage the upstream never reported.
   */
  onOutput?: (text: string) => void;
  /** Whether the client asked for `stream_options.include_usage`; otherwise the usage chunk is dropped. */
  includeUsage: boolean;
  /** Idle time after which a `: ping` comment is sent; `0` disables pings. */
  pingIntervalMs: number;
  /**
   * The longest wait for the next upstream event; then the stream ends with an `upstream_timeout`
   * error frame. `0` or absent: no limit.
   */
  idleTimeoutMs?: number;
  /**
   * The granted reply room, enforced while streaming: when its count reaches the room, the
   * upstream is cancelled and the answer ends like a `max_tokens` cut: a `finish_reason:
   * "length"` chunk for each choice still open, the usage chunk (when asked for) estimated
   * from `promptTokens` and the count and marked `"estimated": true`, then `[DONE]`.
   */
  limit?: { reply: ReplyLimit; promptTokens: number };
  /** Called once, when the stream has ended for any reason. Must not throw. */
  onEnd?: (outcome: OpenAiStreamOutcome) => void;
}

const TRUNCATED_MESSAGE = "The model provider's stream ended before the answer was complete.";
const READ_FAILED_MESSAGE = "The connection to the model provider failed before the answer was complete.";
const IDLE_MESSAGE = "The answer ends with what was received.";

/** Our error for an upstream stream that ended (EOF) before `[DONE]`: 502 `upstream_error`. */
export function upstreamTruncatedError(): ApiError {
  return new ApiError(502, "upstream_error", TRUNCATED_MESSAGE);
}

/**
 * Our error for a read of the upstream stream that threw: 504 `upstream_timeout` when the upstream
 * went quiet for the idle timeout ({@link UpstreamIdleTimeout}), else 502 `upstream_error`.
 */
export function upstreamReadError(err: unknown): ApiError {
  return err instanceof UpstreamIdleTimeout
    ? new ApiError(504, "upstream_timeout", `${err.message} ${IDLE_MESSAGE}`)
    : new ApiError(502, "upstream_error", READ_FAILED_MESSAGE);
}

/** One SSE frame in OpenAI's format: `data:` only. */
function dataFrame(json: unknown): Uint8Array {
  return eventBytes({ data: JSON.stringify(json) });
}

/**
 * Re-serves a DashScope compatible-mode SSE body as an OpenAI Chat Completions stream that the
 * official SDKs read correctly:
 *
 * - `body` may still be on its way (a promise of DashScope's body, resolved at its first byte):
 *   the returned stream starts at once, pings while it waits, and turns a rejection (an upstream
 *   failure, retries exhausted) into the error frame below;
 * - every chunk is passed through as `data: <chunk JSON>` (reasoning_content, tool_calls, logprobs,
 *   audio and unknown fields included; JSON round-tripping keeps key order and values);
 * - the usage chunk (`choices: []`), which the client always requests upstream, reaches the client
 *   only when it asked for it (`includeUsage`); its usage is reported to `onEnd` either way;
 * - `data: [DONE]` is sent only when the upstream sent it, or when the answer reached
 *   `limit` (see {@link OpenAiStreamOptions.limit}). A mid-stream error of either DashScope
 *   shape (the native `event:error` frame would be skipped or misread by OpenAI clients), malformed
 *   data, a failed read, an upstream silent for `idleTimeoutMs` (`upstream_timeout`), or EOF without
 *   `[DONE]` becomes one `data: {"error": {...}}` frame in OpenAI's envelope, which openai-node
 *   and openai-python raise as `APIError`, and the stream ends there: never a silently truncated
 *   answer;
 * - a `: ping` comment is the first byte of the stream, and one follows whenever nothing was sent
 *   for `pingIntervalMs`, so mobile networks and proxies see traffic through the first-token wait
 *   (SSE clients ignore comments; see `sse/heartbeat.ts`);
 * - cancelling the returned stream (the client went away) cancels the upstream body, also one
 *   that has not arrived yet.
 */
export function toOpenAiEventStream(
  body: ReadableStream<Uint8Array> | Promise<ReadableStream<Uint8Array>>,
  options: OpenAiStreamOptions,
): ReadableStream<Uint8Array> {
  const abort = new AbortController();
  const decode = (b: ReadableStream<Uint8Array>) =>
    decodeDashScopeStream(b, { signal: abort.signal, idleTimeoutMs: options.idleTimeoutMs ?? 0 });
  let upstream: ReadableStream<Uint8Array> | null = body instanceof ReadableStream ? body : null;
  let events: AsyncGenerator<StreamEvent> | null = upstream ? decode(upstream) : null;
  let pending: Promise<unknown> | null = null;
  let usage: Usage | null = null;
  let model: string | null = null;
  let ended = false;
  let heartbeat: Heartbeat | null = null;
  let last: ChatCompletionChunk | null = null;
  /** Choice indexes seen, and those that have their `finish_reason`. */
  const open = new Set<number>();

  const end = (status: OpenAiStreamOutcome["status"], error: ApiError | null, cut = false) => {
    if (ended) return;
    ended = true;
    heartbeat?.stop();
    options.onEnd?.({ status, usage, model, error, opened: events !== null, cut });
  };

  const stopReading = () => {
    // Whatever the upstream still sends (e.g. `[DONE]` after an error frame) is not read.
    events?.return(undefined).catch(() => {});
  };

  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, error: ApiError) => {
    controller.enqueue(dataFrame(toOpenAiErrorBody(error)));
    controller.close();
    end("failed", error);
    stopReading();
  };

  /** Ends the answer like DashScope's `max_tokens` cut. */
  const cut = (
    controller: ReadableStreamDefaultController<Uint8Array>,
    limit: NonNullable<OpenAiStreamOptions["limit"]>,
  ) => {
    const envelope = last!;
    for (const index of [...open].sort((a, b) => a - b)) {
      controller.enqueue(
        dataFrame({
          ...envelope,
          choices: [{ index, delta: {}, finish_reason: "length", logprobs: null }],
          usage: null,
        }),
      );
    }
    if (options.includeUsage) {
      const completion = limit.reply.generatedTokens;
      controller.enqueue(
        dataFrame({
          ...envelope,
          choices: [],
          usage: {
            prompt_tokens: limit.promptTokens,
            completion_tokens: completion,
            total_tokens: limit.promptTokens + completion,
            estimated: true,
          },
        }),
      );
    }
    controller.enqueue(DONE_FRAME);
    controller.close();
    end("completed", null, true);
    abort.abort(new Error("reply limit reached"));
    stopReading();
  };

  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        if (options.pingIntervalMs > 0) controller.enqueue(PING);
        heartbeat = new Heartbeat(options.pingIntervalMs, (ping) => controller.enqueue(ping));
        heartbeat.start();
      },
      async pull(controller) {
        if (!events) {
          try {
            const arriving = Promise.resolve(body);
            pending = arriving;
            upstream = await arriving;
          } catch (err) {
            pending = null;
            if (ended) return;
            const error = fromUpstreamFailure(err);
            fail(controller, error instanceof ApiError ? error : upstreamReadError(err));
            return;
          }
          pending = null;
          if (ended) return;
          events = decode(upstream);
        }
        // Loops only over events that produce no output (a dropped usage chunk).
        for (;;) {
          let next: IteratorResult<StreamEvent>;
          try {
            const read = events.next();
            pending = read;
            next = await read;
          } catch (err) {
            pending = null;
            fail(controller, upstreamReadError(err));
            return;
          }
          pending = null;
          if (next.done) {
            fail(controller, upstreamTruncatedError());
            return;
          }
          const event = next.value;
          if (event.type === "done") {
            controller.enqueue(DONE_FRAME);
            controller.close();
            end("completed", null);
            stopReading();
            return;
          }
          if (event.type === "error") {
            fail(controller, upstreamErrorFromStreamError(event.error));
            return;
          }
          const chunk = event.chunk;
          model ??= typeof chunk.model === "string" ? chunk.model : null;
          if (chunk.usage) usage = chunk.usage;
          for (const choice of chunk.choices) {
            if (typeof choice.index !== "number") continue;
            if (choice.finish_reason) open.delete(choice.index);
            else open.add(choice.index);
          }
          if (chunk.choices.length > 0) last = chunk;
          const texts = generatedTexts(chunk);
          if (options.onOutput) for (const text of texts) options.onOutput(text);
          const limit = options.limit;
          if (limit) for (const text of texts) limit.reply.addText(text);
          if (!options.includeUsage) {
            // The usage chunk exists only because we asked for it upstream.
            if (chunk.choices.length === 0) continue;
            if (chunk.usage) chunk.usage = null;
          }
          controller.enqueue(dataFrame(chunk));
          heartbeat?.touch();
          if (limit?.reply.reached && open.size > 0) cut(controller, limit);
          return;
        }
      },
      cancel(reason) {
        end("cancelled", null);
        if (!events) {
          // The upstream body has not arrived: cancel it when it does.
          Promise.resolve(body).then(
            (b) => b.cancel(reason).catch(() => {}),
            () => {},
          );
          return;
        }
        if (pending) {
          // A read is in flight: aborting cancels the upstream reader, which settles it.
          pending.catch(() => {});
          abort.abort(reason);
        } else {
          // Suspended between events (or never started): finishing the decoder cancels the body;
          // a body the decoder never locked is cancelled directly.
          abort.abort(reason);
          events.return(undefined).catch(() => {});
          upstream?.cancel(reason).catch(() => {});
        }
      },
    },
    { highWaterMark: 0 },
  );
}
