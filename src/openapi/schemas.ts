/**
 * zod schemas of the document's response shapes. The resources the API returns are
 * `src/resources/`'s schemas, from which their TypeScript types are inferred; here they only gain
 * the DashScope schemas of the two fields that hold DashScope's JSON (`resources/` sits below
 * `dashscope/`). Then the shapes only the document describes: OpenAI's envelopes passed through
 * and the answer stream's event payloads. Request bodies are the schemas the routes validate
 * with (`bodies.ts`).
 */
import * as z from "zod";
import { turnContentSchema } from "../chat/file-parts";
import { generationParametersSchema } from "../dashscope/schema";
import { pageSchema, timeOrderedId } from "../resources/common";
import { conversationSchema } from "../resources/conversation";
import { errorCodeSchema } from "../resources/errors";
import { accountExportOf, conversationExportOf } from "../resources/export";
import {
  messageSchema as storedMessageSchema,
  storedToolCallSchema,
  turnMessagesShape,
  turnResultOf,
} from "../resources/message";
import { changeOf, syncPageOf } from "../resources/sync";

/** A conversation, its `parameters` described as DashScope's generation parameters. */
export const conversationDocSchema = conversationSchema.extend({
  parameters: generationParametersSchema.describe(
    "Default DashScope parameters of each turn; a turn's own `parameters` override them.",
  ),
});

/** A message, its `content` described as the API's message content (DashScope's parts and file parts). */
export const messageSchema = storedMessageSchema.extend({ content: turnContentSchema.nullable() });

export const conversationPageDocSchema = pageSchema(conversationDocSchema);
export const messagePageDocSchema = pageSchema(messageSchema);

/** The versions at one point of a conversation's tree, oldest first. */
export const siblingsDocSchema = z.object({ data: z.array(messageSchema) });
export const turnResultDocSchema = turnResultOf(messageSchema);
export const conversationExportDocSchema = conversationExportOf(conversationDocSchema, messageSchema);
export const accountExportDocSchema = accountExportOf(conversationDocSchema, messageSchema);
export const changeDocSchema = changeOf(conversationDocSchema, messageSchema);
export const syncPageDocSchema = syncPageOf(changeDocSchema);

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

/**
 * `type`, the first key of every event's data: the event's name, as on its `event:` line
 * (`../shared/API.md` §2.1), so payloads are told apart from `data` alone.
 */
const eventType = <const N extends string>(name: N) =>
  z.literal(name).describe(`The event's name, \`${name}\`, as on its \`event:\` line.`);

/** The payloads of the answer stream's events (`../shared/API.md`, "The answer stream" and §2.1). */
export const turnStartedEventSchema = z
  .object({
    type: eventType("turn.started"),
    ...turnMessagesShape(messageSchema),
    assistant_message: messageSchema,
  })
  .describe("`turn.started`: the new messages and the answer are stored; the answer has status `streaming`.");

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
    type: eventType("message.delta"),
    message_id: timeOrderedId,
    content: z.string().optional(),
    reasoning_content: z.string().optional(),
    tool_calls: z.array(toolCallFragmentSchema).optional(),
  })
  .describe("`message.delta`: incremental; tool-call fragments as DashScope sends them.");

/**
 * `d1_bookmark` of the terminal events: the answer is stored after the stream's headers were sent,
 * so its bookmark comes in the event (middleware/d1-session.ts).
 */
const terminalBookmark = z
  .string()
  .optional()
  .describe(
    "The D1 bookmark after the answer was stored, in the form of the `x-d1-bookmark` response header (naming its database): send it back unchanged as `x-d1-bookmark` so a read sees the stored answer wherever it is served. Absent when none is known.",
  );

export const messageCompletedEventSchema = z
  .object({ type: eventType("message.completed"), message: messageSchema, d1_bookmark: terminalBookmark })
  .describe("`message.completed`: the final stored message, with `finish_reason` and `usage`.");

export const messageFailedEventSchema = z
  .object({ type: eventType("message.failed"), message: messageSchema, d1_bookmark: terminalBookmark })
  .describe(
    "`message.failed`: the stored message (`failed`, `interrupted` or `cancelled`) with its `error`; partial content is kept.",
  );

/**
 * The `data` of any answer-stream event, told apart by `type` (each variant's `type` is a literal).
 * In the document it is `AnswerEvent`: a `oneOf` with a `discriminator` on `type`, which code
 * generators turn into a tagged union (hey-api: `({ type: "turn.started" } & TurnStartedEvent) | …`).
 */
export const answerEventSchema = z
  .discriminatedUnion("type", [
    turnStartedEventSchema,
    messageDeltaEventSchema,
    messageCompletedEventSchema,
    messageFailedEventSchema,
  ])
  .describe(
    "The `data` of one answer-stream event; `type` is the event's name (the `event:` line) and selects the payload.",
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
    estimated: z
      .literal(true)
      .optional()
      .describe(
        "Present when the answer was ended at the call's granted reply room before DashScope reported usage: the counts are edge-chat's estimate.",
      ),
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

export const healthSchema = z.object({ status: z.literal("ok") });
