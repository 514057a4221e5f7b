import type { UpstreamMessage } from "./history";

/** What introduces the running summary to the model, before its text. */
const SUMMARY_HEADING = "Summary of the earlier part of this conversation (those turns are not shown):\n";

/**
 * The running summary as a `system` message of its own (heading + summary text): what its token
 * estimate is made from. A pure function of the summary, so a block's prompts repeat it byte for
 * byte.
 */
export function summaryMessage(content: string): UpstreamMessage {
  return { role: "system", content: SUMMARY_HEADING + content };
}

/**
 * The prompt's leading messages with the summary: appended to the system prompt's message,
 * after a blank line, or alone when there is no system prompt. One `system` message, never
 * two: Qwen's open chat templates (Qwen3.5 on) reject a second one ("System message must be at
 * the beginning.", QwenLM/Qwen3.8#144; vllm-project/vllm#41114). Alibaba Cloud's hosted endpoint
 * is reported to accept several, but a merged one holds everywhere and costs nothing in cache
 * hits: a fold changes everything after the system prompt anyway.
 */
export function withSummary(system: readonly UpstreamMessage[], summary: UpstreamMessage): UpstreamMessage[] {
  const [first, ...rest] = system;
  if (first === undefined) return [summary];
  if (typeof first.content !== "string" || typeof summary.content !== "string")
    return [first, summary, ...rest];
  return [{ role: "system", content: `${first.content}\n\n${summary.content}` }, ...rest];
}
