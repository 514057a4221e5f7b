/**
 * What the stand-in knows about a model's modes (PROTOCOL.md §2.6, §4.1): which models answer only
 * streams, which always think, and which think unless told not to. Kept apart from the Worker's own
 * copy of these facts (`src/dashscope/stream-only.ts`) on purpose: the stand-in plays DashScope, so a
 * Worker that misreads a fact fails against it instead of agreeing with itself.
 */

/** QwQ, QVQ and Qwen-Omni: "Qwen3 开源版、QwQ 商业版与开源版、QVQ、Qwen-Omni等模型仅支持流式输出" (STREAM-ZH). */
const STREAM_ONLY = /^q[wv]q-|^qwen[\d.]*-omni-/;

/** Always think, whatever `enable_thinking` says: QwQ, QVQ, `*-thinking-2507` and other `-thinking` variants, DeepSeek-R1. */
const THINKING_ONLY = /^q[wv]q-|-thinking(?:-|$)|^deepseek-r1(?:-|$)/;

/** Hybrids whose `enable_thinking` defaults to true: Qwen3 open-source hybrids, Qwen3.5-and-later `plus`. */
const THINKING_BY_DEFAULT = /^qwen3-\d+(?:\.\d+)?b(?:-a\d+b)?$|^qwen3\.\d+-plus(?:-|$)/;

/**
 * @param {unknown} model
 * @returns {boolean}
 */
export function isStreamOnlyModel(model) {
  return typeof model === "string" && STREAM_ONLY.test(model);
}

/**
 * @param {unknown} model
 * @returns {boolean}
 */
export function isThinkingOnlyModel(model) {
  return typeof model === "string" && THINKING_ONLY.test(model);
}

/**
 * Whether the model thinks for this body: a thinking-only model always, otherwise `enable_thinking`
 * when the body sets it, otherwise the model's default.
 * @param {any} body
 * @returns {boolean}
 */
export function thinksFor(body) {
  const model = body?.model;
  if (isThinkingOnlyModel(model)) return true;
  if (typeof body?.enable_thinking === "boolean") return body.enable_thinking;
  return typeof model === "string" && THINKING_BY_DEFAULT.test(model);
}
