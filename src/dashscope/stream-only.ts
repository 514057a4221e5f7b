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
import { thinks } from "./thinking";

/** QwQ (commercial and open source), QVQ, and every Qwen-Omni model (`qwen-omni-turbo`, `qwen2.5-omni-7b`, `qwen3-omni-flash`, `qwen3.5-omni-plus`). */
const STREAM_ONLY_MODEL = /^q[wv]q-|^qwen[\d.]*-omni-/;

/** The request fields that decide it; a complete Chat Completions request body has them all. */
interface StreamingFacts {
  model: string;
  enable_thinking?: boolean | undefined;
  modalities?: readonly string[] | undefined;
}

/**
 * Whether DashScope accepts this request only with `stream: true` (see the module comment). Every
 * upstream call that is not streamed must check it first and, when it holds, stream and assemble
 * the answer instead (`completionFromAccumulated` in `./accumulator`).
 */
export function requiresStreaming(request: StreamingFacts): boolean {
  return (
    STREAM_ONLY_MODEL.test(request.model) ||
    request.modalities?.includes("audio") === true ||
    thinks(request.model, request.enable_thinking)
  );
}
