import type { UpstreamMessage } from "./history";

/** What introduces the running summary to the model, before its text. */
const SUMMARY_HEADING = "Summary of the earlier part of this conversation (those turns are not shown):\n";

/**
 * The message that carries a conversation's running summary, right after the system prompt: a
 * second `system` message, so the model reads it as context rather than as something the user
 * said (the Qwen chat template renders a `system` message anywhere as its own turn; history may
 * hold one already). A pure function of the summary, so a block's prompts repeat it byte for byte.
 */
export function summaryMessage(content: string): UpstreamMessage {
  return { role: "system", content: SUMMARY_HEADING + content };
}
