/**
 * The request kinds DashScope accepts only with `stream: true` (`../shared/dashscope/PROTOCOL.md`
 * §2.6, §4.1), each with the 400 message it answers when not streamed, and kinds it answers either
 * way. The stand-in's tests check it rejects exactly these; the Worker's tests check each is
 * answered anyway.
 */
export interface StreamOnlyKind {
  label: string;
  /** The request fields besides `messages`, without `stream`. */
  fields: Record<string, unknown>;
  /** DashScope's `error.message` for the non-streamed request. */
  message: string;
  /** Whether the model thinks (the answer carries `reasoning_content`). */
  thinks: boolean;
}

const THINKING_NEEDS_STREAM = "parameter.enable_thinking must be set to false for non-streaming calls";
const THINKING_ONLY_NEEDS_STREAM = "parameter.enable_thinking only support stream call";
const STREAM_ONLY_MODEL =
  "This model only support stream mode, please enable the stream parameter to access the model. ";

export const STREAM_ONLY_KINDS: StreamOnlyKind[] = [
  {
    label: "thinking asked for on a hybrid model",
    fields: { model: "qwen-plus", enable_thinking: true },
    message: THINKING_NEEDS_STREAM,
    thinks: true,
  },
  {
    label: "a Qwen3 open-source hybrid, thinking by default",
    fields: { model: "qwen3-32b" },
    message: THINKING_NEEDS_STREAM,
    thinks: true,
  },
  {
    label: "a Qwen3.5 plus snapshot, thinking by default",
    fields: { model: "qwen3.5-plus-2026-02-15" },
    message: THINKING_NEEDS_STREAM,
    thinks: true,
  },
  {
    label: "a thinking-only Qwen3 model",
    fields: { model: "qwen3-235b-a22b-thinking-2507" },
    message: THINKING_ONLY_NEEDS_STREAM,
    thinks: true,
  },
  {
    label: "DeepSeek-R1",
    fields: { model: "deepseek-r1" },
    message: THINKING_ONLY_NEEDS_STREAM,
    thinks: true,
  },
  { label: "QwQ", fields: { model: "qwq-plus" }, message: STREAM_ONLY_MODEL, thinks: true },
  { label: "QVQ", fields: { model: "qvq-max" }, message: STREAM_ONLY_MODEL, thinks: true },
  {
    label: "a Qwen-Omni model with text output",
    fields: { model: "qwen-omni-turbo" },
    message: STREAM_ONLY_MODEL,
    thinks: false,
  },
  {
    label: "Qwen-Omni audio output",
    fields: {
      model: "qwen3.5-omni-plus",
      modalities: ["text", "audio"],
      audio: { voice: "Tina", format: "wav" },
    },
    message: "'audio' output only support with stream=true",
    thinks: false,
  },
];

/** Requests DashScope answers without a stream (thinking off, or a model that never thinks). */
export const EITHER_WAY_KINDS: { label: string; fields: Record<string, unknown> }[] = [
  { label: "a commercial hybrid with thinking off by default", fields: { model: "qwen-plus" } },
  {
    label: "a Qwen3 open-source hybrid told not to think",
    fields: { model: "qwen3-32b", enable_thinking: false },
  },
  {
    label: "a Qwen3 instruct release",
    fields: { model: "qwen3-235b-a22b-instruct-2507" },
  },
  { label: "qwen3-max", fields: { model: "qwen3-max" } },
];
