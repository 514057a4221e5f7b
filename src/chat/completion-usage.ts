import type { UsageSummary } from "../dashscope/accumulator";

/** The token usage of one `/v1/chat/completions` call, attributed to its caller. */
export interface CompletionUsageRecord {
  /** The authenticated caller (JWT `sub`, later also an API key's owner). */
  userId: string;
  requestId: string;
  /** The model as the upstream reported it (a dated snapshot may differ from the requested name). */
  model: string;
  /**
   * DashScope's usage of the call: always requested upstream, so it is known for every completed
   * call; `null` when the call ended before the usage chunk (client gone, mid-stream failure).
   */
  usage: UsageSummary | null;
  status: "completed" | "failed" | "cancelled";
}

/**
 * Where the usage of an OpenAI-compatible completion reaches the caller's ledger and quota, exactly
 * as a conversation turn's does. The usage ledger does not exist yet; until it does this records
 * nothing. It runs after the response, under `waitUntil`, and must not throw.
 */
export async function recordCompletionUsage(_record: CompletionUsageRecord): Promise<void> {
  // The usage ledger plugs in here (upsert of `usage_daily` for record.userId / record.model).
}
