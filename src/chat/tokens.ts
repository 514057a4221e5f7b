/**
 * A cheap, conservative token estimate for budgeting history. Qwen's tokenizer yields about
 * four Latin characters per token and about one token per CJK character; counting non-ASCII
 * characters as whole tokens errs on the side of sending less history, never too much.
 */
const LATIN_CHARS_PER_TOKEN = 4;
/** Role markers and separators the chat template adds around every message. */
export const MESSAGE_OVERHEAD_TOKENS = 4;
/** Images, audio and video are billed by size; without decoding them, assume this much each. */
export const MEDIA_PART_TOKENS = 1_280;

/** Estimated tokens of a text. */
export function estimateTextTokens(text: string): number {
  let ascii = 0;
  let other = 0;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) < 128) ascii++;
    else other++;
  }
  return Math.ceil(ascii / LATIN_CHARS_PER_TOKEN) + other;
}

/** Estimated tokens of a message's content (a string or content parts). */
export function estimateContentTokens(content: unknown): number {
  if (content == null) return 0;
  if (typeof content === "string") return estimateTextTokens(content);
  if (!Array.isArray(content)) return estimateTextTokens(JSON.stringify(content));
  let total = 0;
  for (const part of content) {
    if (part && typeof part === "object" && (part as { type?: unknown }).type === "text") {
      total += estimateTextTokens(String((part as { text?: unknown }).text ?? ""));
    } else {
      total += MEDIA_PART_TOKENS;
    }
  }
  return total;
}

/** Estimated tokens of one chat message as sent upstream. */
export function estimateMessageTokens(message: {
  content?: unknown;
  tool_calls?: unknown;
  reasoning_content?: unknown;
}): number {
  let total = MESSAGE_OVERHEAD_TOKENS + estimateContentTokens(message.content);
  if (message.tool_calls) total += estimateTextTokens(JSON.stringify(message.tool_calls));
  return total;
}
