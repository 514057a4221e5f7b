import type { ChatCompletionChunk } from "../dashscope/types";
import { estimateTextTokens } from "./tokens";

/**
 * Enforces a call's granted reply room while it streams: counts the tokens of every generated
 * delta (content, reasoning, tool-call name and argument fragments, all choices together) with
 * {@link estimateTextTokens}, and says when they reach the room. Each piece is estimated on its
 * own and rounded up, so the count errs high (DashScope's tokens are at least as many characters
 * as the estimate assumes), and the answer is cut at most one delta past the room. The backstop
 * for a bound DashScope was not told (a thinking-only model's chain of thought, a model whose
 * maximum output is unknown) or did not keep.
 */
export class ReplyLimit {
  private count = 0;

  /** `roomTokens`: reply tokens of all choices the call may generate; `Infinity` for no limit. */
  constructor(readonly roomTokens: number) {}

  /** Estimated tokens generated so far. */
  get generatedTokens(): number {
    return this.count;
  }

  /** Whether the generated tokens have reached the room: the answer must end now. */
  get reached(): boolean {
    return this.count >= this.roomTokens;
  }

  /** Counts one piece of generated text; returns {@link reached}. */
  addText(text: string): boolean {
    if (text) this.count += estimateTextTokens(text);
    return this.reached;
  }

  /** Counts the generated deltas of one upstream chunk; returns {@link reached}. */
  addChunk(chunk: ChatCompletionChunk): boolean {
    for (const text of generatedTexts(chunk)) this.addText(text);
    return this.reached;
  }
}

/** The generated text of a chunk's deltas: content, reasoning, tool-call names and argument fragments. */
export function generatedTexts(chunk: ChatCompletionChunk): string[] {
  const texts: string[] = [];
  for (const choice of chunk.choices) {
    const d = choice.delta;
    if (typeof d?.content === "string" && d.content) texts.push(d.content);
    if (typeof d?.reasoning_content === "string" && d.reasoning_content) texts.push(d.reasoning_content);
    if (Array.isArray(d?.tool_calls)) {
      for (const fragment of d.tool_calls) {
        const fn = fragment?.function;
        if (typeof fn?.name === "string" && fn.name) texts.push(fn.name);
        if (typeof fn?.arguments === "string" && fn.arguments) texts.push(fn.arguments);
      }
    }
  }
  return texts;
}
