import type { UpstreamMessage } from "../chat/history";
import { estimateRequestTokens } from "../chat/tokens";
import { replyBounds, reservationAsk } from "../chat/usage";
import type { Config } from "../config";
import type { ChatCompletionRequestBody, DashScopeClient } from "../dashscope/client";
import { takesThinkingBudget } from "../dashscope/thinking";
import { logError, logInfo } from "../log/log";
import { newId } from "../store/ids";
import { reserveQuota, settleUsage, utcDay } from "../store/usage";
import { contentText, meteredCall } from "./metered-call";

/**
 * The running summary of a long conversation (issue 17): when history no longer fits, the turns
 * a fold drops are folded into a summary by `SUMMARY_MODEL`, which the next blocks' prompts carry
 * in their system message, after the system prompt. Each summary extends the previous one with the turns newly
 * folded (previous summary + those turns → new summary), so what turn 1 said survives fold
 * after fold. One non-streamed call per summary, made after the turn that asked for it (off the
 * answer's path), reserved and settled against the user's daily budget like every upstream call;
 * a refused reservation skips the summary, a failed call leaves the previous one.
 */

/**
 * `max_tokens` of the summary call: about 3,000 characters, a fifth of a 16k window's prompt
 * budget, so a summary carried by every prompt of a block leaves the turns most of the room.
 */
export const SUMMARY_MAX_TOKENS = 768;

const SUMMARY_INSTRUCTION =
  "You keep the running summary of a conversation between a user and an assistant. You are given the " +
  "summary so far (if any) and the turns that follow it. Reply with the updated summary only: keep every " +
  "fact the user stated (names, numbers, dates, codenames, decisions, preferences, open tasks) and what " +
  "the assistant committed to, drop small talk, write in the conversation's language, in short lines, " +
  "at most 400 words.";

/** What a summary job did (for its log line and for tests). */
export type SummaryOutcome =
  | "summarized"
  /** The daily budget could not hold the call: no call made. */
  | "over_budget"
  /** The call failed or its answer was empty: the previous summary stays. */
  | "failed";

export interface SummaryJob {
  db: D1Database;
  config: Config;
  /** The summary model (`config.summaryModel`). */
  model: string;
  userId: string;
  conversationId: string;
  /** The summary being extended, or null for the path's first. */
  previous: string | null;
  /** The turns to fold into it, oldest first. */
  messages: UpstreamMessage[];
  /** The client to call DashScope with; one for `config` by default. */
  client?: Pick<DashScopeClient, "complete">;
}

/**
 * Makes the next summary: reserves the call's worst case (prompt estimate plus
 * {@link SUMMARY_MAX_TOKENS}, all or nothing) on the user's shard, calls `job.model`
 * non-streamed, and settles its usage to the user's ledger with the conversation's id. A failed
 * call releases its reservation. Never rejects: the outcome, and the summary when one was made.
 */
export async function summarizeConversation(
  job: SummaryJob,
): Promise<{ outcome: SummaryOutcome; content: string | null }> {
  try {
    const result = await runSummaryJob(job);
    logInfo("summary.finished", { conversation_id: job.conversationId, outcome: result.outcome });
    return result;
  } catch (err) {
    logError("summary.failed", { conversation_id: job.conversationId, error: err });
    return { outcome: "failed", content: null };
  }
}

async function runSummaryJob(job: SummaryJob): Promise<{ outcome: SummaryOutcome; content: string | null }> {
  const { db, config, model, userId, conversationId } = job;
  const request = summaryRequest(model, job.previous, job.messages);
  const promptEstimate = estimateRequestTokens(request);
  const ask = reservationAsk(promptEstimate, replyBounds(request, model, config));
  const now = Date.now();
  const day = utcDay(now);
  const reservationId = newId();
  const { granted } = await reserveQuota(
    db,
    reservationId,
    { userId, day, tokens: ask.wanted, now, defaultBudget: config.dailyTokenBudget },
    now + config.quotaReservationTtlMs,
  );
  if (granted === null) return { outcome: "over_budget", content: null };

  const call = await meteredCall({
    db,
    config,
    model,
    userId,
    conversationId,
    request,
    promptEstimate,
    reservationId,
    day,
    failureEvent: "summary.call_failed",
    ...(job.client ? { client: job.client } : {}),
  });
  if (!call) return { outcome: "failed", content: null };
  await settleUsage(db, call.settlement);
  const text = call.text.trim();
  return text === "" ? { outcome: "failed", content: null } : { outcome: "summarized", content: text };
}

/**
 * The summary call: the instruction as the system message, and the summary so far with the new
 * turns quoted as one transcript in one user message (the model summarises it rather than
 * answering it), `max_tokens` {@link SUMMARY_MAX_TOKENS}, thinking off where the model has the
 * switch (a non-streamed call may not think, PROTOCOL.md §2.6). Images are left out (their text
 * parts are kept); a tool exchange is quoted whole, calls with their arguments.
 */
export function summaryRequest(
  model: string,
  previous: string | null,
  messages: readonly UpstreamMessage[],
): ChatCompletionRequestBody & {
  messages: { role: string; content: string }[];
  max_tokens: number;
  enable_thinking?: boolean;
} {
  const turns = messages.map(transcriptLine).filter((line) => line !== "");
  const quoted =
    `Summary so far:\n${previous ?? "(none yet)"}\n\n` + `Turns that follow it:\n${turns.join("\n\n")}`;
  return {
    model,
    messages: [
      { role: "system", content: SUMMARY_INSTRUCTION },
      { role: "user", content: quoted },
    ],
    max_tokens: SUMMARY_MAX_TOKENS,
    ...(takesThinkingBudget(model) ? { enable_thinking: false } : {}),
  };
}

/** One message of the transcript: its role and text, a tool call as its name and arguments. */
function transcriptLine(m: UpstreamMessage): string {
  const text = contentText(m.content);
  if (m.role === "assistant" && m.tool_calls?.length) {
    const calls = m.tool_calls.map((c) => `${c.function.name}(${c.function.arguments})`).join(", ");
    return `Assistant: ${text ? `${text}\n` : ""}[called ${calls}]`;
  }
  if (text === "") return "";
  const who =
    m.role === "user"
      ? "User"
      : m.role === "assistant"
        ? "Assistant"
        : m.role === "tool"
          ? "Tool result"
          : "System";
  return `${who}: ${text}`;
}
