/**
 * zod schemas of the shapes the API returns (`../shared/API.md`), written for the OpenAPI
 * document. Request bodies are the schemas the routes validate with (`bodies.ts`).
 */
import * as z from "zod";
import { generationParametersSchema, messageContentSchema } from "../dashscope/schema";
import { errorCodeSchema } from "../errors/codes";

export { errorBodySchema } from "../errors/error-body";

/** OpenAI's error envelope, used by `/v1/chat/completions` and `/v1/models`, and as a mid-stream error frame. */
export const openAiErrorBodySchema = z.object({
  error: z.object({
    message: z.string(),
    type: z
      .string()
      .describe(
        "OpenAI's error type: `invalid_request_error`, `authentication_error`, `rate_limit_error`, `insufficient_quota`, `api_error`, …",
      ),
    param: z.string().nullable(),
    code: errorCodeSchema.describe("The edge-chat error code."),
  }),
});

const isoTime = z.iso.datetime().describe("ISO 8601, UTC");
const id = z.string().describe("Opaque, time-ordered id");

export const conversationSchema = z.object({
  id,
  title: z.string().nullable(),
  system_prompt: z.string().nullable(),
  model: z.string().nullable().describe("`null`: the server's default model applies to each turn."),
  parameters: generationParametersSchema.describe(
    "Default DashScope parameters of each turn; a turn's own `parameters` override them.",
  ),
  archived: z.boolean(),
  created_at: isoTime,
  updated_at: isoTime,
  last_message_at: isoTime.nullable(),
});

export const messageUsageSchema = z.object({
  prompt_tokens: z.int().min(0),
  completion_tokens: z.int().min(0),
  total_tokens: z.int().min(0),
  cached_tokens: z.int().min(0),
  reasoning_tokens: z.int().min(0),
  estimated: z
    .boolean()
    .describe(
      "True when DashScope reported no usage (a stopped or cut-off answer) and the counts are estimates.",
    ),
});

export const storedToolCallSchema = z.object({
  id: z.string(),
  type: z.literal("function"),
  function: z.object({
    name: z.string(),
    arguments: z
      .string()
      .describe(
        'JSON object text as the model wrote it; "{}" for a call without arguments. A stored answer leaves out a call cut off before its arguments were complete; /v1/chat/completions passes it through (finish_reason "length").',
      ),
  }),
});

export const messageSchema = z.object({
  id,
  conversation_id: id,
  parent_id: id.nullable(),
  role: z.enum(["system", "user", "assistant", "tool"]),
  content: messageContentSchema.nullable(),
  reasoning_content: z.string().nullable(),
  tool_calls: z.array(storedToolCallSchema).nullable(),
  tool_call_id: z.string().nullable(),
  status: z.enum(["streaming", "completed", "cancelled", "interrupted", "failed"]),
  finish_reason: z.string().nullable(),
  model: z.string().nullable(),
  usage: messageUsageSchema.nullable().describe("`null` while unknown."),
  error: z
    .object({ code: errorCodeSchema, message: z.string() })
    .loose()
    .nullable()
    .describe("Why the answer failed, was interrupted or cancelled."),
  created_at: isoTime,
  completed_at: isoTime.nullable(),
});

const nextCursor = z
  .string()
  .nullable()
  .describe("Pass as `cursor` for the next page; `null` on the last page.");

export const conversationPageSchema = z.object({
  data: z.array(conversationSchema),
  next_cursor: nextCursor,
});
export const messagePageSchema = z.object({ data: z.array(messageSchema), next_cursor: nextCursor });

// Request bodies: the schemas the routes validate with (one source).
export {
  createConversationBody as createConversationBodySchema,
  turnBody as createTurnBodySchema,
  updateConversationBody as updateConversationBodySchema,
} from "./bodies";

export const turnResultSchema = z.object({
  user_message: messageSchema.describe(
    "The turn's new message; for a tool turn, the last of `tool_messages`.",
  ),
  tool_messages: z
    .array(messageSchema)
    .optional()
    .describe(
      "A tool turn only: its results, each stored as its own `tool` message, in the order of the calls they answer.",
    ),
  assistant_message: messageSchema,
});

/** The payloads of the answer stream's events (`../shared/API.md`, "The answer stream"). */
export const turnStartedEventSchema = turnResultSchema.describe(
  "`turn.started`: the new messages and the answer are stored; the answer has status `streaming`.",
);

export const toolCallFragmentSchema = z
  .object({
    index: z.int().min(0),
    id: z.string().nullable().optional(),
    type: z.string().nullable().optional(),
    function: z
      .object({ name: z.string().nullable().optional(), arguments: z.string().nullable().optional() })
      .loose()
      .nullable()
      .optional(),
  })
  .loose();

export const messageDeltaEventSchema = z
  .object({
    message_id: id,
    content: z.string().optional(),
    reasoning_content: z.string().optional(),
    tool_calls: z.array(toolCallFragmentSchema).optional(),
  })
  .describe("`message.delta`: incremental; tool-call fragments as DashScope sends them.");

export const messageCompletedEventSchema = z
  .object({ message: messageSchema })
  .describe("`message.completed`: the final stored message, with `finish_reason` and `usage`.");

export const messageFailedEventSchema = z
  .object({ message: messageSchema })
  .describe(
    "`message.failed`: the stored message (`failed`, `interrupted` or `cancelled`) with its `error`; partial content is kept.",
  );

const upstreamUsageSchema = z
  .object({
    prompt_tokens: z.int(),
    completion_tokens: z.int(),
    total_tokens: z.int(),
    prompt_tokens_details: z.object({ cached_tokens: z.int().optional() }).loose().nullable().optional(),
    completion_tokens_details: z
      .object({ reasoning_tokens: z.int().optional() })
      .loose()
      .nullable()
      .optional(),
  })
  .loose();

const logprobsSchema = z
  .object({ content: z.array(z.object({}).loose()).nullable() })
  .loose()
  .nullable();

/** A `chat.completion` as DashScope returns it; unknown fields are passed through. */
export const chatCompletionSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion"),
    created: z.int(),
    model: z.string(),
    choices: z.array(
      z
        .object({
          index: z.int(),
          message: z
            .object({
              role: z.literal("assistant"),
              content: z.string().nullable(),
              reasoning_content: z.string().nullable().optional(),
              tool_calls: z.array(storedToolCallSchema.loose()).nullable().optional(),
            })
            .loose(),
          finish_reason: z.string().nullable(),
          logprobs: logprobsSchema.optional(),
        })
        .loose(),
    ),
    usage: upstreamUsageSchema.nullable().optional(),
  })
  .loose();

/** One `chat.completion.chunk` of a streamed completion; unknown fields are passed through. */
export const chatCompletionChunkSchema = z
  .object({
    id: z.string(),
    object: z.literal("chat.completion.chunk"),
    created: z.int(),
    model: z.string(),
    choices: z.array(
      z
        .object({
          index: z.int(),
          delta: z
            .object({
              role: z.literal("assistant").optional(),
              content: z.string().nullable().optional(),
              reasoning_content: z.string().nullable().optional(),
              tool_calls: z.array(toolCallFragmentSchema).nullable().optional(),
            })
            .loose(),
          finish_reason: z.string().nullable().optional(),
          logprobs: logprobsSchema.optional(),
        })
        .loose(),
    ),
    usage: upstreamUsageSchema
      .nullable()
      .optional()
      .describe(
        "Set only on the last chunk (`choices: []`), sent when `stream_options.include_usage` is true.",
      ),
  })
  .loose();

export const modelSchema = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.int().describe("Unix seconds; 0 when unknown."),
  owned_by: z.string(),
});

export const modelListSchema = z.object({ object: z.literal("list"), data: z.array(modelSchema) });

export const healthSchema = z.object({ status: z.literal("ok") });

const usageCounters = {
  requests: z.int().min(0),
  prompt_tokens: z.int().min(0),
  completion_tokens: z.int().min(0),
  total_tokens: z.int().min(0),
  cached_tokens: z.int().min(0),
  reasoning_tokens: z.int().min(0),
  cost_usd: z.number().min(0).describe("Estimated cost at list prices."),
};

export const usageReportSchema = z
  .object({
    from: z.iso.date(),
    to: z.iso.date(),
    data: z
      .array(z.object({ day: z.iso.date(), model: z.string(), ...usageCounters }))
      .describe("By UTC day and model, oldest first."),
    totals: z.object(usageCounters),
  })
  .describe("Token usage by day and model for the days `from`..`to` (inclusive, UTC).");
