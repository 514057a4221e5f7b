/**
 * Which requests DashScope answers only as a stream (`../shared/dashscope/PROTOCOL.md` §2.6
 * "Stream-only" and `enable_thinking`, §4.1). Sent with `stream: false` they fail with HTTP 400 and
 * `param: null`:
 *
 * - thinking on, whether asked for or the model's default: `parameter.enable_thinking must be set
 *   to false for non-streaming calls` / `parameter.enable_thinking only support stream call`;
 * - QwQ, QVQ and Qwen-Omni models: `This model only support stream mode, please enable the stream
 *   parameter to access the model.`;
 * - Qwen-Omni audio output (`modalities` with `"audio"`): `'audio' output only support with stream=true`.
 *
 * Model ids are case-sensitive on DashScope (§3.2, `Qwen-Plus` is `model_not_found`), so the
 * patterns are too. Dated snapshots and `-latest` aliases share their family's suffix-free prefix.
 */

/** QwQ (commercial and open source), QVQ, and every Qwen-Omni model (`qwen-omni-turbo`, `qwen2.5-omni-7b`, `qwen3-omni-flash`, `qwen3.5-omni-plus`). */
const STREAM_ONLY_MODEL = /^q[wv]q-|^qwen[\d.]*-omni-/;

/**
 * Models that always think and ignore `enable_thinking` (§2.6): QwQ, the Qwen3 `*-thinking-2507`
 * open-source models (and other `-thinking` variants such as `qwen3-vl-235b-a22b-thinking`),
 * DeepSeek-R1; and QVQ, the visual reasoning model (stream-only in any case).
 */
const THINKING_ONLY_MODEL = /^q[wv]q-|-thinking(?:-|$)|^deepseek-r1(?:-|$)/;

/**
 * Hybrid models whose `enable_thinking` defaults to true (§2.6): the Qwen3 open-source hybrids
 * (`qwen3-0.6b` … `qwen3-32b`, `qwen3-30b-a3b`, `qwen3-235b-a22b`; the `-instruct-2507` releases
 * never think and do not match) and the Qwen3.5-and-later `plus` models (`qwen3.5-plus`,
 * `qwen3.6-plus`, their snapshots). The commercial Qwen3 models (`qwen-plus`, `qwen-flash`,
 * `qwen-turbo`) and Qwen3-Omni-Flash default to false.
 */
const THINKING_BY_DEFAULT_MODEL = /^qwen3-\d+(?:\.\d+)?b(?:-a\d+b)?$|^qwen3\.\d+-plus(?:-|$)/;

/** The request fields that decide it; a complete Chat Completions request body has them all. */
interface StreamingFacts {
  model: string;
  enable_thinking?: boolean | undefined;
  modalities?: readonly string[] | undefined;
}

/** Whether DashScope will think for this request: asked for, or the model's default or only mode (§2.6). */
function thinks(request: StreamingFacts): boolean {
  if (THINKING_ONLY_MODEL.test(request.model)) return true;
  if (request.enable_thinking !== undefined) return request.enable_thinking;
  return THINKING_BY_DEFAULT_MODEL.test(request.model);
}

/**
 * Whether DashScope accepts this request only with `stream: true` (see the module comment). Every
 * upstream call that is not streamed must check it first and, when it holds, stream and assemble
 * the answer instead (`completionFromAccumulated` in `./accumulator`).
 */
export function requiresStreaming(request: StreamingFacts): boolean {
  return (
    STREAM_ONLY_MODEL.test(request.model) || request.modalities?.includes("audio") === true || thinks(request)
  );
}
