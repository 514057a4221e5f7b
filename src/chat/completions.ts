import type { Config } from "../config";
import { CompletionAccumulator, completionFromAccumulated } from "../dashscope/accumulator";
import type { ChatCompletionRequestBody, DashScopeClient } from "../dashscope/client";
import type { ChatCompletionRequest } from "../dashscope/schema";
import { requiresStreaming } from "../dashscope/stream-only";
import type { ChatCompletion, Usage } from "../dashscope/types";
import type { ApiError } from "../errors/api-error";
import { logError, logInfo } from "../log/log";
import type { D1Queries } from "../store/sessions";
import { emptyArgumentsAsObject } from "../text/tool-call-arguments";
import { type CompletionFiles, withFileParts } from "./completion-files";
import {
  type CompletionOutcome,
  type CompletionReservation,
  reserveCompletion,
  settleCompletion,
} from "./completion-usage";
import { sendableMessages } from "./file-images";
import {
  type OpenAiStreamOutcome,
  toOpenAiEventStream,
  upstreamReadError,
  upstreamTruncatedError,
} from "./openai-stream";
import { ReplyLimit } from "./reply-limit";
import { estimateTextTokens } from "./tokens";
import { fromUpstreamFailure, upstreamErrorFromStreamError } from "./upstream-error";
import { cacheUsage, estimatedUsage, usageSummary } from "./usage";

/** Who is calling, where their usage goes, and how to keep work alive after the response. */
export interface CompletionCaller {
  userId: string;
  requestId: string;
  db: D1Queries;
  config: Config;
  /** `ExecutionContext.waitUntil`: the usage record is written after the response. */
  waitUntil: (promise: Promise<unknown>) => void;
}

/** The client the completion is forwarded with (a {@link DashScopeClient} in production). */
export type CompletionClient = Pick<DashScopeClient, "stream" | "complete">;

/**
 * Forwards a validated streaming request and returns the OpenAI-compatible event stream for the
 * caller (see {@link toOpenAiEventStream}) without waiting for the model: it resolves once the
 * reservation is made and DashScope's HTTP status is known, or `startDeadlineMs` after the call
 * went out, whichever comes first. A failure known by then (every attempt refused, or a final
 * refusal) rejects with its `UpstreamError` (the caller answers with its HTTP status); a later
 * one, retries included, arrives as the stream's error frame. The stream pings from its first
 * byte on. The granted reply room goes upstream as `max_tokens`/`thinking_budget` where
 * DashScope takes them ({@link grantedReply}) and is enforced while streaming ({@link ReplyLimit}).
 * The upstream always sends its usage chunk; it reaches the caller only when the request asked
 * for `stream_options.include_usage`, and its usage is recorded for the caller either way once
 * the stream ends (estimated, and marked so, when it never came).
 */
export async function streamChatCompletion(
  client: CompletionClient,
  request: ChatCompletionRequest,
  caller: CompletionCaller,
  options: {
    pingIntervalMs: number;
    startDeadlineMs: number;
    signal?: AbortSignal;
    /** The request's file parts (checked by `checkCompletionFiles`), turned into images here. */
    files?: CompletionFiles | null;
  },
): Promise<ReadableStream<Uint8Array>> {
  const { reservation, messages } = await reserveWithImages(request, caller, options.files ?? null);
  // Aborted when the client goes away, also before the upstream's first byte.
  const abort = new AbortController();
  const onCallerAbort = () => abort.abort(options.signal?.reason);
  if (options.signal?.aborted) onCallerAbort();
  else options.signal?.addEventListener("abort", onCallerAbort, { once: true });
  let accepted!: () => void;
  const headers = new Promise<void>((resolve) => (accepted = resolve));
  const call = client.stream(forwardable(request, messages, reservation), {
    signal: abort.signal,
    onHeaders: () => accepted(),
  });
  // DashScope's status is known at its 200's headers, or when the call settles first (a
  // refusal after the retries, or a first byte).
  const statusKnown = Promise.race([headers, call.then(() => {})]);
  await forward(caller, reservation, () => within(statusKnown, options.startDeadlineMs));
  let attempts = 0;
  const body = call.then((upstream) => {
    attempts = upstream.attempts;
    return upstream.body;
  });
  // The event stream reads the rejection when it pulls; it may come before the first pull.
  body.catch(() => {});
  let outputTokens = 0;
  return toOpenAiEventStream(body, {
    includeUsage: request.stream_options?.include_usage === true,
    pingIntervalMs: options.pingIntervalMs,
    idleTimeoutMs: caller.config.upstreamIdleTimeoutMs,
    limit: { reply: new ReplyLimit(reservation.reply.roomTokens), promptTokens: reservation.promptEstimate },
    onOutput: (text) => {
      outputTokens += estimateTextTokens(text);
    },
    onEnd: (outcome: OpenAiStreamOutcome) => {
      options.signal?.removeEventListener("abort", onCallerAbort);
      if (outcome.status === "cancelled" && !abort.signal.aborted) abort.abort(new Error("client went away"));
      if (!outcome.opened) {
        // Failed or cancelled before DashScope's first byte: nothing was generated.
        logInfo("completion.finished", {
          request_id: caller.requestId,
          status: outcome.status,
          model: request.model,
          upstream_attempts: null,
          error_code: outcome.error?.code ?? null,
          usage: null,
        });
        caller.waitUntil(
          settleCompletion(caller.db, caller.config, reservation, null).catch(logSettleError(caller)),
        );
        return;
      }
      finish(caller, reservation, {
        model: outcome.model ?? request.model,
        usage: outcome.cut ? null : usageSummary(outcome.usage),
        cache: cacheUsage(outcome.cut ? null : outcome.usage),
        status: outcome.status,
        outputTokens,
        attempts,
        errorCode: outcome.error?.code ?? null,
      });
    },
  });
}

/**
 * Resolves when `started` does or after `ms`, whichever is first; rejects when `started` rejects
 * first. The timer is cleared either way, so nothing outlives the wait.
 */
function within(started: Promise<void>, ms: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    started.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Answers a validated non-streaming request with a `chat.completion` (choices with `content`,
 * `reasoning_content`, complete `tool_calls` (a call's `""` arguments as `"{}"`, see
 * {@link emptyArgumentsAsObject}), `logprobs`, Omni `audio`; `usage`), after recording its usage.
 * A request DashScope accepts only as a stream ({@link requiresStreaming}: thinking, QwQ/QVQ/Omni
 * models, audio output), or whose partial grant DashScope cannot be told of (a model whose
 * maximum output is unknown), is streamed upstream and assembled into the body a non-streamed
 * call returns, cut at the grant like a `max_tokens` cut; any other is forwarded with
 * `stream: false` (and the grant's `max_tokens`) and returned as it came. Rejects with an
 * `UpstreamError` when the upstream fails, also mid-stream while assembling, and with a 502/504
 * `ApiError` when an assembled stream breaks off or goes quiet.
 */
export async function completeChatCompletion(
  client: CompletionClient,
  request: ChatCompletionRequest,
  caller: CompletionCaller,
  options: { signal?: AbortSignal; files?: CompletionFiles | null } = {},
): Promise<ChatCompletion> {
  const { reservation, messages } = await reserveWithImages(request, caller, options.files ?? null);
  // A grant DashScope cannot be told of is enforced by counting the answer as it streams in.
  if (requiresStreaming(request) || !reservation.reply.enforcedUpstream)
    return assembleChatCompletion(client, request, messages, caller, reservation, options);
  const { completion, attempts } = await forward(caller, reservation, () =>
    client.complete(forwardable(request, messages, reservation), { signal: options.signal }),
  );
  for (const choice of completion.choices) {
    if (Array.isArray(choice.message?.tool_calls))
      choice.message.tool_calls = emptyArgumentsAsObject(choice.message.tool_calls);
  }
  finish(caller, reservation, {
    model: typeof completion.model === "string" ? completion.model : request.model,
    usage: usageSummary(completion.usage ?? null),
    cache: cacheUsage(completion.usage ?? null),
    status: "completed",
    outputTokens: estimateOutputTokens(completion),
    attempts,
    errorCode: null,
  });
  return completion;
}

/**
 * Streams `request` upstream and builds the non-streamed body from the accumulated stream
 * (`completionFromAccumulated`). The usage is settled once, whatever the ending: from the usage
 * chunk (always requested upstream) when it came, else estimated from what was received. An
 * error frame (PROTOCOL.md §3.4) rejects with its mapped `UpstreamError`; a failed read, an end
 * without `[DONE]` and a `finish_reason` for every choice, or an upstream silent for
 * `upstreamIdleTimeoutMs` with the error the streamed endpoint sends for it: never a truncated answer.
 */
async function assembleChatCompletion(
  client: CompletionClient,
  request: ChatCompletionRequest,
  messages: readonly unknown[],
  caller: CompletionCaller,
  reservation: CompletionReservation,
  options: { signal?: AbortSignal },
): Promise<ChatCompletion> {
  const upstream = await forward(caller, reservation, () =>
    client.stream(forwardable(request, messages, reservation), { signal: options.signal }),
  );
  const accumulator = new CompletionAccumulator();
  const limit = new ReplyLimit(reservation.reply.roomTokens);
  let readError: unknown = null;
  let cut = false;
  try {
    for await (const event of upstream.events()) {
      accumulator.push(event);
      // `[DONE]` or an error frame ends the answer; leaving the loop cancels whatever follows.
      if (event.type !== "chunk") break;
      if (limit.addChunk(event.chunk) && event.chunk.choices.every((c) => !c.finish_reason)) {
        // The granted room is used up: the answer ends here like a `max_tokens` cut.
        cut = true;
        break;
      }
    }
  } catch (err) {
    readError = err;
  }
  const result = accumulator.finish();
  const completion = completionFromAccumulated(result);
  if (cut) {
    for (const choice of completion.choices) choice.finish_reason ??= "length";
    const usage = estimatedUsage(reservation.promptEstimate, limit.generatedTokens);
    // The usage chunk never came: the caller gets the estimate, marked as one.
    const estimate: Usage & { estimated: true } = {
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      total_tokens: usage.total_tokens,
      estimated: true,
    };
    completion.usage = estimate;
    finish(caller, reservation, {
      model: result.model ?? request.model,
      usage: null,
      status: "completed",
      outputTokens: limit.generatedTokens,
      attempts: upstream.attempts,
      errorCode: null,
    });
    return completion;
  }
  // The caller's abort (the signal reaches the fetch) ends the read like a dropped connection.
  const cancelled = options.signal?.aborted === true && result.status !== "completed";
  let failure: ApiError | null = null;
  if (result.error) failure = upstreamErrorFromStreamError(result.error);
  else if (result.status !== "completed" && !cancelled)
    failure = readError !== null ? upstreamReadError(readError) : upstreamTruncatedError();
  finish(caller, reservation, {
    model: result.model ?? request.model,
    usage: usageSummary(result.usage),
    cache: cacheUsage(result.usage),
    status: failure ? "failed" : cancelled ? "cancelled" : "completed",
    outputTokens: estimateOutputTokens(completion),
    attempts: upstream.attempts,
    errorCode: failure?.code ?? null,
  });
  if (failure) throw failure;
  if (cancelled) throw options.signal?.reason;
  return completion;
}

/** Estimated tokens of an answer (text and tool calls), for a call whose usage never arrived. */
function estimateOutputTokens(completion: ChatCompletion): number {
  const text = completion.choices
    .map(
      (c) =>
        `${c.message?.content ?? ""}${c.message?.reasoning_content ?? ""}` +
        (c.message?.tool_calls?.length ? JSON.stringify(c.message.tool_calls) : ""),
    )
    .join("");
  return estimateTextTokens(text);
}

/**
 * The request as DashScope takes it: a history tool call with `""` arguments (what a client
 * assembles from a streamed call without arguments, passed through as DashScope sent it) is sent
 * with `"{}"`, which DashScope accepts where it rejects `""`; and the reservation's reply limits
 * (`max_tokens`, `thinking_budget`, see {@link grantedReply}) replace the caller's, which they
 * never exceed.
 */
function forwardable(
  request: ChatCompletionRequest,
  sent: readonly unknown[],
  reservation: CompletionReservation,
): ChatCompletionRequestBody {
  const messages = request.messages.map((message, i) => {
    // A message whose file parts became images (`reserveWithImages`) is sent as such.
    if (sent[i] !== message) return sent[i];
    if (message.role !== "assistant" || !message.tool_calls) return message;
    const calls = emptyArgumentsAsObject(message.tool_calls);
    if (calls === message.tool_calls) return message;
    return { ...message, tool_calls: calls };
  });
  const { maxTokens, thinkingBudget } = reservation.reply;
  return {
    ...request,
    messages,
    ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
    ...(thinkingBudget !== undefined ? { thinking_budget: thinkingBudget } : {}),
  } as ChatCompletionRequestBody;
}

/**
 * Reserves the call's quota and, alongside (R2 reads and D1 overlap), turns its file parts into
 * the images DashScope reads: the request's messages as they are sent (the same objects where
 * nothing changed).
 */
async function reserveWithImages(
  request: ChatCompletionRequest,
  caller: CompletionCaller,
  files: CompletionFiles | null,
): Promise<{ reservation: CompletionReservation; messages: readonly unknown[] }> {
  if (!files || files.parts.length === 0) {
    const reservation = await reserveCompletion(caller.db, caller.config, caller.userId, request);
    return { reservation, messages: request.messages };
  }
  const [reservation, messages] = await Promise.all([
    reserveCompletion(caller.db, caller.config, caller.userId, request, Date.now(), files),
    sendableMessages(withFileParts(request.messages, files.parts), files.files, files.bucket, caller.config),
  ]);
  return { reservation, messages };
}

/** Calls upstream; a failure before any answer releases the reservation (nothing to bill). */
async function forward<T>(
  caller: CompletionCaller,
  reservation: CompletionReservation,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (err) {
    caller.waitUntil(
      settleCompletion(caller.db, caller.config, reservation, null).catch(logSettleError(caller)),
    );
    throw fromUpstreamFailure(err);
  }
}

interface Finished extends CompletionOutcome {
  attempts: number;
  errorCode: string | null;
}

/** Settles the usage in the ledger and writes one structured log line (never content). */
function finish(caller: CompletionCaller, reservation: CompletionReservation, done: Finished): void {
  logInfo("completion.finished", {
    request_id: caller.requestId,
    status: done.status,
    model: done.model,
    upstream_attempts: done.attempts,
    error_code: done.errorCode,
    usage: done.usage,
  });
  caller.waitUntil(
    settleCompletion(caller.db, caller.config, reservation, done).catch(logSettleError(caller)),
  );
}

const logSettleError = (caller: CompletionCaller) => (error: unknown) => {
  logError("completion.settle_failed", {
    request_id: caller.requestId,
    message: "settling completion usage failed",
    error,
  });
};
