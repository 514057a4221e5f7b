import { type AccumulatedCompletion, CompletionAccumulator } from "../dashscope/accumulator";
import type { ChunkDelta } from "../dashscope/types";
import type { AnswerOutcome } from "../store/turns";
import type { Message, MessageError } from "../store/types";
import { answerOutcome } from "./answer-generation";
import type { AnswerLog, AnswerRecord, LoggedEvent } from "./answer-log";
import { terminalEventFrame } from "./event-data";

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

/** What closing an orphan needs from its object. */
export interface OrphanOwner {
  log: AnswerLog;
  /** Stores the answer's final state (exactly once); null when it was already finished. */
  finish(record: AnswerRecord, outcome: AnswerOutcome): Promise<Message | null>;
  /** The stored answer, when {@link finish} found it finished already. */
  stored(record: AnswerRecord): Promise<Message | null>;
  /** The D1 bookmark after the answer was stored, tagged (store/sessions.ts `tagBookmark`), for the terminal event (null: none known). */
  bookmark(record: AnswerRecord): string | null;
}

/** The stored `error` of an answer whose owner died. */
const INTERRUPTED: MessageError = {
  code: "interrupted",
  message: "The answer was interrupted when its server restarted.",
};

/**
 * Closes an answer whose owner died (its log says streaming, nothing generates it): stored as
 * `interrupted` with what its logged events carried (tool calls included, complete ones only),
 * settled with estimated usage, and its log ends with the terminal event, so resumed streams
 * end too.
 */
export async function closeOrphan(owner: OrphanOwner, record: AnswerRecord): Promise<void> {
  const events = owner.log.events(record.message_id, 0);
  const now = Date.now();
  const outcome = answerOutcome(accumulateLoggedAnswer(events), {
    status: "interrupted",
    error: INTERRUPTED,
    estimatedPromptTokens: record.prompt_estimate,
    ttftMs: null,
    durationMs: now - record.started_at,
    completedAt: now,
  });
  const stored = (await owner.finish(record, outcome)) ?? (await owner.stored(record));
  const lastId = events.at(-1)?.id ?? record.last_event_id;
  if (stored && stored.status !== "streaming")
    owner.log.append(record.message_id, terminalEventFrame(lastId + 1, stored, owner.bookmark(record)));
  owner.log.finish(
    record.message_id,
    stored?.status ?? "interrupted",
    now,
    outcome.usage?.completion_tokens ?? 0,
  );
}
