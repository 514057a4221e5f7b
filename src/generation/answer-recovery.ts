import { type AccumulatedCompletion, CompletionAccumulator } from "../dashscope/accumulator";
import type { ChunkDelta } from "../dashscope/types";
import type { LoggedEvent } from "./answer-log";

/**
 * An answer as far as its logged events carry it, rebuilt by the accumulator a live answer uses.
 * Each `message.delta` holds choice 0's delta as DashScope sent it (content, reasoning_content,
 * tool-call fragments with their `index`), so the result is what the live answer had accumulated
 * when its last events were logged. Its status is `interrupted` (no finish reason, no `[DONE]`).
 */
export function accumulateLoggedAnswer(events: readonly LoggedEvent[]): AccumulatedCompletion {
  const accumulator = new CompletionAccumulator();
  for (const e of events) {
    if (e.event !== "message.delta") continue;
    const { content, reasoning_content, tool_calls } = JSON.parse(e.data) as ChunkDelta;
    accumulator.pushDelta(0, { content, reasoning_content, tool_calls });
  }
  return accumulator.finish();
}
