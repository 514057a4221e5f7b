import { estimateRequestTokens } from "../chat/tokens";
import { replyBounds, reservationAsk } from "../chat/usage";
import type { Config } from "../config";
import type { ChatCompletionRequestBody, DashScopeClient } from "../dashscope/client";
import { takesThinkingBudget } from "../dashscope/thinking";
import { logError, logInfo } from "../log/log";
import { newId } from "../store/ids";
import { claimTitleCall, storeGeneratedTitle } from "../store/titles";
import type { HistoryRow, PromptSource } from "../store/turns";
import type { Message } from "../store/types";
import { utcDay } from "../store/usage";
import { truncateText } from "../text/well-formed";
import { contentText, meteredCall } from "./metered-call";

/**
 * Titles for untitled conversations (API.md §2.3 "Titles"): after a conversation's first
 * completed answer, one non-streamed call to `TITLE_MODEL` asks for a short title in the
 * language of that first exchange. The call is claimed once per conversation, reserved and
 * settled against the user's daily budget like every upstream call, and its title is written
 * only where the conversation still has none: a title the user set, before or while the call
 * runs, is never replaced. A failed or refused call leaves the title null for good.
 */

/** `max_tokens` of the title call: a title of a dozen words, in any script, fits. */
export const TITLE_MAX_TOKENS = 32;
/** The longest title written, in UTF-16 code units (the API takes titles of up to 200). */
export const MAX_GENERATED_TITLE_CHARS = 80;
/**
 * How much of the user's message and of the answer the title call is shown, in UTF-16 code units
 * each: their opening says what the conversation is about, and the bound keeps the call's
 * prompt (and its reservation) near 600 tokens however long the exchange (4 characters a token).
 */
export const TITLE_EXCHANGE_CHARS = 1_000;

const TITLE_INSTRUCTION =
  "You name chat conversations. Reply with a title for the conversation the user quotes: at most " +
  "six words, in the language of the quoted user message, without quotation marks, a trailing " +
  "period or any other text.";

/** The first exchange of a conversation, as the title call sees it. */
export interface FirstExchange {
  /** The text of the user's first message (on the answer's path). */
  userText: string;
  /** The text of the answer. */
  answerText: string;
}

/**
 * The first exchange to title a conversation from, when `answer` is the first completed answer
 * on its path (`source`: the conversation's prompt state, with the answer or without it);
 * else null. Without a prompt state (dropped after a concurrent write), the turn's own user
 * message stands for the first one, and the claim in D1 decides (see {@link titleConversation}).
 */
export function firstExchange(
  source: PromptSource | null,
  userMessage: Message,
  answer: Message,
): FirstExchange | null {
  if (answer.status !== "completed") return null;
  const answerText = contentText(answer.content);
  if (!source) {
    return userMessage.role === "user" ? { userText: contentText(userMessage.content), answerText } : null;
  }
  // The path, newest first: an earlier completed answer means this one is not the first.
  const path = source.history;
  if (path.some((m) => m.role === "assistant" && m.status === "completed" && m.id !== answer.id)) return null;
  const firstUser = path.findLast((m) => m.role === "user");
  const userText = firstUser
    ? rowText(firstUser)
    : userMessage.role === "user"
      ? contentText(userMessage.content)
      : "";
  return userText === "" && answerText === "" ? null : { userText, answerText };
}

/** What a title job did (for its log line and for tests). */
export type TitleOutcome =
  | "titled"
  /** The user's title came first (set while the call ran). */
  | "kept"
  /** Titled, or attempted, before (or the conversation is gone): no call made. */
  | "settled"
  /** The daily budget could not hold the call: no call made, none will be. */
  | "over_budget"
  /** The call failed or its answer held no title: the title stays null. */
  | "failed";

export interface TitleJob extends FirstExchange {
  db: D1Database;
  config: Config;
  /** The title model (`config.titleModel`, when titles are on). */
  model: string;
  userId: string;
  conversationId: string;
  /** The client to call DashScope with; one for `config` by default. */
  client?: Pick<DashScopeClient, "complete">;
}

/**
 * Titles the conversation from its first exchange, if it still has no title and was never
 * attempted: claims the call and reserves its worst case (prompt estimate plus
 * {@link TITLE_MAX_TOKENS}, all or nothing) in one D1 round trip, calls `job.model`
 * non-streamed, then writes the sanitized title (`WHERE title IS NULL`) and settles the usage
 * to the user's ledger with the conversation's id, in one more. A failed call releases its
 * reservation. Never rejects: every failure is logged and reported as the outcome.
 */
export async function titleConversation(job: TitleJob): Promise<TitleOutcome> {
  try {
    const outcome = await runTitleJob(job);
    logInfo("title.finished", { conversation_id: job.conversationId, outcome });
    return outcome;
  } catch (err) {
    logError("title.failed", { conversation_id: job.conversationId, error: err });
    return "failed";
  }
}

async function runTitleJob(job: TitleJob): Promise<TitleOutcome> {
  const { db, config, model, userId, conversationId } = job;
  const request = titleRequest(model, job);
  const promptEstimate = estimateRequestTokens(request);
  const ask = reservationAsk(promptEstimate, replyBounds(request, model, config));
  const now = Date.now();
  const day = utcDay(now);
  const reservationId = newId();
  const claim = await claimTitleCall(db, {
    userId,
    conversationId,
    reservationId,
    // All or nothing: a title cut short for want of budget is not worth its prompt.
    quota: { userId, day, tokens: ask.wanted, now, defaultBudget: config.dailyTokenBudget },
    expiresAt: now + config.quotaReservationTtlMs,
    now,
  });
  if (claim.kind === "settled") return "settled";
  if (claim.kind === "refused") return "over_budget";

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
    failureEvent: "title.call_failed",
    ...(job.client ? { client: job.client } : {}),
  });
  if (!call) return "failed";
  const title = sanitizeTitle(call.text);
  const written = await storeGeneratedTitle(
    db,
    { userId, conversationId, title, now: call.settlement.now },
    call.settlement,
  );
  if (title === null) return "failed";
  return written ? "titled" : "kept";
}

/**
 * The title call: the instruction as the system message and the exchange quoted in one user
 * message (the model titles it rather than continuing it), `max_tokens` {@link TITLE_MAX_TOKENS},
 * and thinking off where the model has the switch (a non-streamed call may not think, PROTOCOL.md §2.6).
 */
export function titleRequest(
  model: string,
  exchange: FirstExchange,
): ChatCompletionRequestBody & {
  messages: { role: string; content: string }[];
  max_tokens: number;
  enable_thinking?: boolean;
} {
  const quoted =
    `User: ${truncateText(exchange.userText, TITLE_EXCHANGE_CHARS)}\n\n` +
    `Assistant: ${truncateText(exchange.answerText, TITLE_EXCHANGE_CHARS)}`;
  return {
    model,
    messages: [
      { role: "system", content: TITLE_INSTRUCTION },
      { role: "user", content: quoted },
    ],
    max_tokens: TITLE_MAX_TOKENS,
    ...(takesThinkingBudget(model) ? { enable_thinking: false } : {}),
  };
}

/**
 * A model's reply as a title: its first non-empty line, without a leading "Title:", Markdown
 * emphasis or heading marks, surrounding quotation marks or a trailing period, control
 * characters and runs of spaces collapsed, cut to {@link MAX_GENERATED_TITLE_CHARS} (at a space
 * when there is one in its last fifth). Null when nothing is left.
 */
export function sanitizeTitle(reply: string): string | null {
  const line = reply
    .split(/\r\n|\r|\n/)
    .map((l) => l.trim())
    .find((l) => l !== "");
  if (line === undefined) return null;
  let title = line
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is removed.
    .replace(/[\u0000-\u001f\u007f]/g, " ")
    .replace(/^#+\s*/, "")
    .replace(/^(?:title|标题|題名|タイトル)\s*[:：]\s*/i, "")
    .replace(/^\*+|\*+$/g, "")
    .trim();
  for (let previous = ""; previous !== title; ) {
    previous = title;
    title = title
      .replace(/^["'“”‘’「『«]+|["'“”‘’」』»]+$/gu, "")
      .replace(/[.。]+$/u, "")
      .trim();
  }
  title = title.replace(/\s+/g, " ");
  if (title.length > MAX_GENERATED_TITLE_CHARS) {
    const cut = truncateText(title, MAX_GENERATED_TITLE_CHARS);
    const space = cut.lastIndexOf(" ");
    title = (space >= MAX_GENERATED_TITLE_CHARS * 0.8 ? cut.slice(0, space) : cut).trim();
  }
  return title === "" ? null : title;
}

/** The text of a history row's stored content (`content_json`). */
function rowText(row: HistoryRow): string {
  if (row.content_json === null) return "";
  try {
    return contentText(JSON.parse(row.content_json) as unknown);
  } catch {
    return "";
  }
}
