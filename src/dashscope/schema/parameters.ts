import * as z from "zod";
import { searchOptionsSchema } from "./search";
import { toolChoiceSchema, toolsSchema } from "./tools";
import { WHEN_VALID } from "./when-valid";

/** Largest `seed` (2^31 − 1). */
export const MAX_SEED = 2 ** 31 - 1;
/** Largest `top_logprobs`. */
export const MAX_TOP_LOGPROBS = 5;
/** `temperature` must stay below this (`Temperature should be in [0.0, 2.0)`). */
export const TEMPERATURE_LIMIT = 2;
/** `presence_penalty` lies in [−2, 2]. */
export const MAX_PRESENCE_PENALTY = 2;
/**
 * Largest `max_tokens` and `thinking_budget`: twice the largest documented maximum output
 * (qwen3-max, 65,536; PROTOCOL.md §7.1) and above the largest documented chain of thought
 * (Qwen3-VL, 80K). DashScope enforces each model's own limit (`Range of max_tokens should be
 * [1, N]`); this cap only turns absurd values (1e9) into a 400 here instead of a quota refusal.
 */
export const MAX_OUTPUT_TOKENS = 131_072;
/** Largest `max_input_tokens`: the largest context window of any Qwen model (qwen-long, 10M). */
export const MAX_INPUT_TOKENS = 10_000_000;
/** Largest integer DashScope's services take for `top_k` and token ids (a signed 32-bit integer). */
export const MAX_INT32 = 2 ** 31 - 1;
/**
 * Largest `parameters` object, in bytes of JSON. They go to the model with every request of a
 * conversation (tool definitions are most of it); 256 KiB is about 64K tokens of definitions,
 * more than the whole context window of many models.
 */
export const MAX_PARAMETERS_BYTES = 262_144;

const tokenId = z.int().min(0).max(MAX_INT32);

/**
 * `stop`: a string, or an array of strings, of token ids, or of token-id sequences.
 * DashScope forbids mixing strings and token ids in one array.
 */
export const stopSchema = z
  .union([z.string(), z.array(z.union([z.string(), tokenId, z.array(tokenId).min(1)]))], {
    error: "must be a string or an array of strings, token ids or token-id arrays",
  })
  .superRefine((stop, ctx) => {
    if (typeof stop === "string" || stop.length === 0) return;
    const kind = (item: (typeof stop)[number]) =>
      typeof item === "string" ? "string" : typeof item === "number" ? "token" : "sequence";
    const first = kind(stop[0]!);
    const mixed = stop.findIndex((item) => kind(item) !== first);
    if (mixed !== -1) {
      ctx.addIssue({
        code: "custom",
        path: [mixed],
        message: 'must not mix strings and token ids in one "stop" array',
      });
    }
  }, WHEN_VALID);

export const responseFormatSchema = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("text") }),
  z.strictObject({ type: z.literal("json_object") }),
  z.strictObject({
    type: z.literal("json_schema"),
    json_schema: z.strictObject({
      name: z.string().regex(/^[a-zA-Z0-9_-]{1,64}$/, { error: 'must be 1-64 letters, digits, "_" or "-"' }),
      description: z.string().optional(),
      schema: z.record(z.string(), z.unknown()).optional(),
      strict: z.boolean().optional(),
    }),
  }),
]);

/** Qwen-Omni output modalities: exactly `["text"]` or `["text", "audio"]`, in that order. */
export const modalitiesSchema = z.custom<["text"] | ["text", "audio"]>(
  (value) =>
    Array.isArray(value) &&
    value[0] === "text" &&
    (value.length === 1 || (value.length === 2 && value[1] === "audio")),
  { error: 'must be ["text"] or ["text", "audio"]' },
);

/** Qwen-Omni output audio; only `wav` (base64 PCM in the stream) exists. */
export const audioOutputSchema = z.strictObject({
  voice: z.string().min(1),
  format: z.literal("wav"),
});

/**
 * The sampling and feature parameters, without `model`, `messages`, `stream`, `stream_options`
 * and `n`. Bounds follow the DashScope API reference.
 */
export const generationParametersShape = {
  temperature: z.number().min(0).lt(TEMPERATURE_LIMIT).optional(),
  top_p: z.number().gt(0).max(1).optional(),
  /** `null` or > 100 disables top-k sampling. */
  top_k: z.int().min(0).max(MAX_INT32).nullable().optional(),
  presence_penalty: z.number().min(-MAX_PRESENCE_PENALTY).max(MAX_PRESENCE_PENALTY).optional(),
  /** Upper bound is the model's maximum output; DashScope reports it (`Range of max_tokens should be [1, N]`). */
  max_tokens: z.int().min(1).max(MAX_OUTPUT_TOKENS).optional(),
  max_input_tokens: z.int().min(1).max(MAX_INPUT_TOKENS).optional(),
  seed: z.int().min(0).max(MAX_SEED).optional(),
  logprobs: z.boolean().optional(),
  top_logprobs: z.int().min(0).max(MAX_TOP_LOGPROBS).optional(),
  stop: stopSchema.optional(),
  response_format: responseFormatSchema.optional(),
  modalities: modalitiesSchema.optional(),
  audio: audioOutputSchema.optional(),
  enable_thinking: z.boolean().optional(),
  /** Caps reasoning tokens; `max_tokens` does not limit the chain of thought. */
  thinking_budget: z.int().min(1).max(MAX_OUTPUT_TOKENS).optional(),
  tools: toolsSchema.optional(),
  tool_choice: toolChoiceSchema.optional(),
  /** DashScope defaults this to false (OpenAI: true). */
  parallel_tool_calls: z.boolean().optional(),
  enable_search: z.boolean().optional(),
  search_options: searchOptionsSchema.optional(),
  vl_high_resolution_images: z.boolean().optional(),
  enable_code_interpreter: z.boolean().optional(),
};

/**
 * What a conversation stores as its default `parameters` and a turn overrides. Rules that
 * involve several fields run on the assembled request ({@link checkRequestRules}), because
 * defaults and overrides are only complete together.
 */
export const generationParametersSchema = z.strictObject(generationParametersShape);

export type GenerationParameters = z.infer<typeof generationParametersSchema>;
