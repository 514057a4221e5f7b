import { estimateTextTokens } from "../chat/tokens";
import { cacheUsage, estimatedUsage, ledgerEntry, reportedUsage, usageSummary } from "../chat/usage";
import type { Config } from "../config";
import {
  type ChatCompletionRequestBody,
  createDashScopeClient,
  type DashScopeClient,
} from "../dashscope/client";
import { logError } from "../log/log";
import type { D1Queries } from "../store/sessions";
import { releaseQuery, type Settlement } from "../store/usage";

/** A non-streamed call made beside the turns (a title, a summary), its reservation already held. */
export interface MeteredCall {
  db: D1Queries;
  config: Config;
  /** The model asked for: the ledger's model (a snapshot the reply names is priced instead). */
  model: string;
  userId: string;
  conversationId: string;
  request: ChatCompletionRequestBody;
  /** The request's prompt estimate in tokens: the usage billed when DashScope reports none. */
  promptEstimate: number;
  /** The held reservation's id, which becomes the usage record's id. */
  reservationId: string;
  /** The UTC day the reservation was taken on (store/usage.ts `utcDay`). */
  day: string;
  /** The log event of a failed call (`title.call_failed`, …). */
  failureEvent: string;
  /** The client to call DashScope with; one for `config` by default. */
  client?: Pick<DashScopeClient, "complete">;
}

/**
 * Makes `call.request` non-streamed. On success: the reply's text and the settlement that bills
 * it (reported usage, else estimated from the prompt and the text; priced by the model the reply
 * names), for the caller to write with its own statements. On failure: the reservation is
 * released (nothing was generated, nothing to bill), the failure logged, and null returned.
 */
export async function meteredCall(
  call: MeteredCall,
): Promise<{ text: string; settlement: Settlement } | null> {
  const client = call.client ?? createDashScopeClient(call.config);
  let completion: Awaited<ReturnType<DashScopeClient["complete"]>>["completion"];
  try {
    ({ completion } = await client.complete(call.request));
  } catch (err) {
    await releaseQuery(call.db, call.reservationId).statement.run();
    logError(call.failureEvent, { conversation_id: call.conversationId, error: err });
    return null;
  }
  const reply = completion.choices[0]?.message?.content;
  const text = typeof reply === "string" ? reply : "";
  const reported = usageSummary(completion.usage ?? null);
  const usage = reported
    ? reportedUsage(reported)
    : estimatedUsage(call.promptEstimate, estimateTextTokens(text));
  const pricedModel = typeof completion.model === "string" ? completion.model : null;
  return {
    text,
    settlement: {
      id: call.reservationId,
      userId: call.userId,
      conversationId: call.conversationId,
      status: "completed",
      usage,
      ...ledgerEntry(
        { day: call.day, model: call.model, usage, pricedModel, cache: cacheUsage(completion.usage ?? null) },
        call.config.modelPrices,
      ),
      now: Date.now(),
    },
  };
}

/** The text of a message's content: a string, or its `text` parts joined. */
export function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .map((part: unknown) =>
      part !== null && typeof part === "object" && "text" in part && typeof part.text === "string"
        ? part.text
        : "",
    )
    .join("");
}
