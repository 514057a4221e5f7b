import { UpstreamIdleTimeout } from "../dashscope/idle-watchdog";
import { decodeDashScopeStream } from "../dashscope/stream";
import type { StreamEvent, Usage } from "../dashscope/types";
import { ApiError } from "../errors/api-error";
import { eventBytes } from "../sse/encode";
import { Heartbeat } from "../sse/heartbeat";
import { toOpenAiErrorBody } from "./openai-error";
import { upstreamErrorFromStreamError } from "./upstream-error";

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
 * - every chunk is passed through as `data: <chunk JSON>` (reasoning_content, tool_calls, logprobs,
 *   audio and unknown fields included; JSON round-tripping keeps key order and values);
 * - the usage chunk (`choices: []`), which the client always requests upstream, reaches the client
 *   only when it asked for it (`includeUsage`); its usage is reported to `onEnd` either way;
 * - `data: [DONE]` is sent only when the upstream sent it. A mid-stream error of either DashScope
 *   shape (the native `event:error` frame would be skipped or misread by OpenAI clients), malformed
 *   data, a failed read, an upstream silent for `idleTimeoutMs` (`upstream_timeout`), or EOF without
 *   `[DONE]` becomes one `data: {"error": {...}}` frame in OpenAI's envelope, which openai-node
 *   and openai-python raise as `APIError`, and the stream ends there: never a silently truncated
 *   answer;
 * - when nothing was sent for `pingIntervalMs`, a `: ping` comment keeps mobile networks and
 *   proxies from closing the connection (SSE clients ignore comments; see `sse/heartbeat.ts`);
 * - cancelling the returned stream (the client went away) cancels the upstream body.
 */
export function toOpenAiEventStream(
  body: ReadableStream<Uint8Array>,
  options: OpenAiStreamOptions,
): ReadableStream<Uint8Array> {
  const abort = new AbortController();
  const events = decodeDashScopeStream(body, {
    signal: abort.signal,
    idleTimeoutMs: options.idleTimeoutMs ?? 0,
  });
  let pending: Promise<IteratorResult<StreamEvent>> | null = null;
  let usage: Usage | null = null;
  let model: string | null = null;
  let ended = false;
  let heartbeat: Heartbeat | null = null;

  const end = (status: OpenAiStreamOutcome["status"], error: ApiError | null) => {
    if (ended) return;
    ended = true;
    heartbeat?.stop();
    options.onEnd?.({ status, usage, model, error });
  };

  const fail = (controller: ReadableStreamDefaultController<Uint8Array>, error: ApiError) => {
    controller.enqueue(dataFrame(toOpenAiErrorBody(error)));
    controller.close();
    end("failed", error);
    // Whatever the upstream still sends (e.g. `[DONE]` after an error frame) is not read.
    events.return(undefined).catch(() => {});
  };

  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        heartbeat = new Heartbeat(options.pingIntervalMs, (ping) => controller.enqueue(ping));
        heartbeat.start();
      },
      async pull(controller) {
        // Loops only over events that produce no output (a dropped usage chunk).
        for (;;) {
          let next: IteratorResult<StreamEvent>;
          try {
            pending = events.next();
            next = await pending;
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
            events.return(undefined).catch(() => {});
            return;
          }
          if (event.type === "error") {
            fail(controller, upstreamErrorFromStreamError(event.error));
            return;
          }
          const chunk = event.chunk;
          model ??= typeof chunk.model === "string" ? chunk.model : null;
          if (chunk.usage) usage = chunk.usage;
          if (options.onOutput) {
            for (const choice of chunk.choices) {
              const d = choice.delta;
              if (typeof d?.content === "string" && d.content) options.onOutput(d.content);
              if (typeof d?.reasoning_content === "string" && d.reasoning_content)
                options.onOutput(d.reasoning_content);
              if (Array.isArray(d?.tool_calls)) {
                for (const fragment of d.tool_calls) {
                  const fn = fragment?.function;
                  if (typeof fn?.name === "string" && fn.name) options.onOutput(fn.name);
                  if (typeof fn?.arguments === "string" && fn.arguments) options.onOutput(fn.arguments);
                }
              }
            }
          }
          if (!options.includeUsage) {
            // The usage chunk exists only because we asked for it upstream.
            if (chunk.choices.length === 0) continue;
            if (chunk.usage) chunk.usage = null;
          }
          controller.enqueue(dataFrame(chunk));
          heartbeat?.touch();
          return;
        }
      },
      cancel(reason) {
        end("cancelled", null);
        if (pending) {
          // A read is in flight: aborting cancels the upstream reader, which settles it.
          pending.catch(() => {});
          abort.abort(reason);
        } else {
          // Suspended between events (or never started): finishing the decoder cancels the body;
          // a body the decoder never locked is cancelled directly.
          abort.abort(reason);
          events.return(undefined).catch(() => {});
          body.cancel(reason).catch(() => {});
        }
      },
    },
    { highWaterMark: 0 },
  );
}
