/** Thinking-only models, which ignore `enable_thinking` (some reject `false`): QwQ, QVQ, `*-thinking-*` snapshots, DeepSeek-R1. */
const THINKING_ONLY = /^(qwq|qvq)(-|$)|-thinking(-|$)|^deepseek-r1(-|$)/;
/** Hybrid models whose `enable_thinking` defaults to true: Qwen3 open-source (`qwen3-8b`, `qwen3-235b-a22b`, not the `-instruct-` snapshots) and qwen3.5-plus / qwen3.6-plus. */
const THINKING_BY_DEFAULT = /^(?!.*-instruct(-|$))qwen3-\d+(\.\d+)?b(-|$)|^qwen3\.[56]-plus(-|$)/;

/**
 * Whether `model` reasons before it answers, given the request's `enable_thinking` (PROTOCOL.md
 * §2.6): thinking-only models always do; hybrid models follow `enable_thinking`, whose default
 * is on for Qwen3 open-source models and qwen3.5-plus / qwen3.6-plus and off for the
 * commercial qwen-plus, qwen-flash and qwen-turbo.
 */
export function thinks(model: string, enableThinking: boolean | undefined): boolean {
  if (THINKING_ONLY.test(model)) return true;
  return enableThinking ?? THINKING_BY_DEFAULT.test(model);
}
