import { usageSummary } from "../dashscope/accumulator";
import type { ChatCompletionRequestBody, DashScopeClient } from "../dashscope/client";
import { toOpenAiEventStream, type OpenAiStreamOutcome } from "../dashscope/openai-stream";
import type { ChatCompletionRequest } from "../dashscope/schema";
import type { ChatCompletion } from "../dashscope/types";
import { recordCompletionUsage, type CompletionUsageRecord } from "./completion-usage";

/** Who is calling, and how to keep work alive after the response. */
export interface CompletionCaller {
  userId: string;
  requestId: string;
  /** `ExecutionContext.waitUntil`: the usage record is written after the response. */
  waitUntil: (promise: Promise<unknown>) => void;
}

/** The client the completion is forwarded with (a {@link DashScopeClient} in production). */
export type CompletionClient = Pick<DashScopeClient, "stream" | "complete">;

/**
 * Forwards a validated streaming request and returns the OpenAI-compatible event stream for the
 * caller (see {@link toOpenAiEventStream}). The upstream always sends its usage chunk; it reaches
 * the caller only when the request asked for `stream_options.include_usage`, and its usage is
 * recorded for the caller either way once the stream ends. Rejects with an `UpstreamError` when
 * the upstream fails before its first byte.
 */
export async function streamChatCompletion(
  client: CompletionClient,
  request: ChatCompletionRequest,
  caller: CompletionCaller,
  options: { pingIntervalMs: number; signal?: AbortSignal },
): Promise<ReadableStream<Uint8Array>> {
  const upstream = await client.stream(request as ChatCompletionRequestBody, { signal: options.signal });
  return toOpenAiEventStream(upstream.body, {
    includeUsage: request.stream_options?.include_usage === true,
    pingIntervalMs: options.pingIntervalMs,
    onEnd: (outcome: OpenAiStreamOutcome) =>
      finish(caller, {
        model: outcome.model ?? request.model,
        usage: usageSummary(outcome.usage),
        status: outcome.status,
        attempts: upstream.attempts,
        errorCode: outcome.error?.code ?? null,
      }),
  });
}

/**
 * Forwards a validated non-streaming request and returns the upstream completion as it came
 * (choices, `reasoning_content`, `tool_calls`, `logprobs`, `usage`), after recording its usage.
 * Rejects with an `UpstreamError` when the upstream fails.
 */
export async function completeChatCompletion(
  client: CompletionClient,
  request: ChatCompletionRequest,
  caller: CompletionCaller,
  options: { signal?: AbortSignal } = {},
): Promise<ChatCompletion> {
  const { completion, attempts } = await client.complete(request as ChatCompletionRequestBody, { signal: options.signal });
  finish(caller, {
    model: typeof completion.model === "string" ? completion.model : request.model,
    usage: usageSummary(completion.usage ?? null),
    status: "completed",
    attempts,
    errorCode: null,
  });
  return completion;
}

interface Finished {
  model: string;
  usage: CompletionUsageRecord["usage"];
  status: CompletionUsageRecord["status"];
  attempts: number;
  errorCode: string | null;
}

/** Hands the usage to the ledger seam and writes one structured log line (never content). */
function finish(caller: CompletionCaller, done: Finished): void {
  console.log(
    JSON.stringify({
      event: "completion.finished",
      request_id: caller.requestId,
      status: done.status,
      model: done.model,
      upstream_attempts: done.attempts,
      error_code: done.errorCode,
      usage: done.usage,
    }),
  );
  caller.waitUntil(
    recordCompletionUsage({ userId: caller.userId, requestId: caller.requestId, model: done.model, usage: done.usage, status: done.status }).catch(
      (error: unknown) => {
        console.error(JSON.stringify({ level: "error", request_id: caller.requestId, message: "recording completion usage failed", error: String(error) }));
      },
    ),
  );
}
