import * as z from "zod";
import { isoTime, pageSchema, timeOrderedId } from "./common";
import { ERROR_CODES } from "./errors";
import { jsonValueSchema } from "./json";

/** Token usage of an answer; counts DashScope did not report are 0. */
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

/** A complete tool call of an answer, as stored. */
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

/**
 * The `error.code` of a stored answer: an error code of the contract, or how the answer ended
 * early (`cancelled` by a stop, `interrupted` when its owner restarted).
 */
const messageErrorCodeSchema = z.enum([...ERROR_CODES, "cancelled", "interrupted"]);

const messageRoleSchema = z.enum(["system", "user", "assistant", "tool"]);
/** `streaming` while an answer is generated; user messages are stored `completed`. */
const messageStatusSchema = z.enum(["streaming", "completed", "cancelled", "interrupted", "failed"]);

/** A message as the API returns it. */
export const messageSchema = z.object({
  id: timeOrderedId,
  conversation_id: timeOrderedId,
  parent_id: timeOrderedId.nullable(),
  role: messageRoleSchema,
  content: z
    .union([z.string(), z.array(jsonValueSchema)])
    .nullable()
    .describe("A string or content parts as DashScope accepts them; `null` when absent."),
  reasoning_content: z.string().nullable(),
  tool_calls: z.array(storedToolCallSchema).nullable(),
  tool_call_id: z.string().nullable(),
  status: messageStatusSchema,
  finish_reason: z.string().nullable(),
  model: z.string().nullable(),
  usage: messageUsageSchema.nullable().describe("`null` while unknown."),
  error: z
    .object({ code: messageErrorCodeSchema, message: z.string() })
    .catchall(jsonValueSchema)
    .nullable()
    .describe("Why the answer failed, was interrupted or cancelled."),
  sibling_index: z
    .int()
    .min(0)
    .describe(
      "Its place (0-based, oldest first) among the versions at its point of the tree: the messages with its `parent_id`.",
    ),
  sibling_count: z
    .int()
    .min(1)
    .describe("How many versions there are at its point of the tree (edits, regenerated answers)."),
  created_at: isoTime,
  completed_at: isoTime.nullable(),
});

const messagePageSchema = pageSchema(messageSchema);

/**
 * The messages a turn stores, as its `stream: false` reply and `turn.started` name them, with
 * `message` as the message schema.
 */
export const turnMessagesShape = <M extends z.ZodType>(message: M) => ({
  user_message: message.describe("The turn's new message; for a tool turn, the last of `tool_messages`."),
  tool_messages: z
    .array(message)
    .optional()
    .describe(
      "A tool turn only: its results, each stored as its own `tool` message, in the order of the calls they answer.",
    ),
});

/** A non-streamed turn's reply: its new messages and the answer. */
export const turnResultOf = <M extends z.ZodType>(message: M) =>
  z.object({
    ...turnMessagesShape(message),
    assistant_message: message
      .nullable()
      .describe("`null` only for a retried send whose turn was stored without an answer."),
  });

const turnResultSchema = turnResultOf(messageSchema);

export type MessageUsage = z.infer<typeof messageUsageSchema>;
export type StoredToolCall = z.infer<typeof storedToolCallSchema>;
/** Why an answer failed, was interrupted or cancelled. */
export type MessageError = NonNullable<z.infer<typeof messageSchema>["error"]>;
export type MessageRole = z.infer<typeof messageRoleSchema>;
export type MessageStatus = z.infer<typeof messageStatusSchema>;
export type Message = z.infer<typeof messageSchema>;
export type MessagePage = z.infer<typeof messagePageSchema>;
export type TurnResult = z.infer<typeof turnResultSchema>;
