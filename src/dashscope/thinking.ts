/**
 * Which models reason before they answer (`../shared/dashscope/PROTOCOL.md` §2.6). Model ids are
 * case-sensitive on DashScope (§3.2), so the patterns are too; dated snapshots and `-latest`
 * aliases share their family's prefix.
 */

/**
 * Models that always think and ignore `enable_thinking` (some reject `false`): QwQ, QVQ (the
 * visual reasoning model), the Qwen3 `*-thinking-2507` open-source models and other `-thinking`
 * variants such as `qwen3-vl-235b-a22b-thinking`, DeepSeek-R1.
 */
const THINKING_ONLY_MODEL = /^q[wv]q(?:-|$)|-thinking(?:-|$)|^deepseek-r1(?:-|$)/;

/**
 * Hybrid models whose `enable_thinking` defaults to true: the Qwen3 open-source hybrids
 * (`qwen3-0.6b` … `qwen3-32b`, `qwen3-30b-a3b`, `qwen3-235b-a22b`; the `-instruct-2507` releases
 * never think and do not match) and the Qwen3.5-and-later `plus` models (`qwen3.5-plus`,
 * `qwen3.6-plus`, their snapshots). The commercial Qwen3 models (`qwen-plus`, `qwen-flash`,
 * `qwen-turbo`) and Qwen3-Omni-Flash default to false.
 */
const THINKING_BY_DEFAULT_MODEL = /^qwen3-\d+(?:\.\d+)?b(?:-a\d+b)?$|^qwen3\.\d+-plus(?:-|$)/;

/**
 * Whether `model` reasons before it answers, given the request's `enable_thinking`: thinking-only
 * models always do; hybrid models follow `enable_thinking`, whose default depends on the model.
 */
export function thinks(model: string, enableThinking: boolean | undefined): boolean {
  if (THINKING_ONLY_MODEL.test(model)) return true;
  return enableThinking ?? THINKING_BY_DEFAULT_MODEL.test(model);
}

/**
 * Whether DashScope takes a `thinking_budget` for `model`: the hybrid models whose thinking is
 * switched by `enable_thinking` (PROTOCOL.md §2.6 names `thinking_budget` next to it). The
 * thinking-only models (QwQ, QVQ, `-thinking` variants, DeepSeek-R1) ignore `enable_thinking`
 * and some reject parameters of the switch, so none of our own is sent to them; their chain
 * of thought is bounded while streaming instead.
 */
export function takesThinkingBudget(model: string): boolean {
  return !THINKING_ONLY_MODEL.test(model);
}
