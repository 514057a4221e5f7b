/**
 * The request bodies of the routes, as zod schemas: the routes validate with them and the
 * OpenAPI document (`document.ts`) is generated from them, so the two cannot drift apart. They
 * live here, below the routes, because both the routes and the document import them.
 */
import * as z from "zod";
import { turnContentSchema } from "../chat/file-parts";
import { RATE_LIMIT_TIERS } from "../config";
import { generationParametersSchema, textContentSchema } from "../dashscope/schema";
import { reshardCursorSchema } from "../resources/reshard";
import { UNLIMITED_BUDGET } from "../store/usage";
import { hasControlCharacter, MULTILINE_WHITESPACE } from "../text/control-characters";

/** Longest conversation title, in UTF-16 code units. */
export const MAX_TITLE_CHARS = 200;
/** Longest per-conversation system prompt, in UTF-16 code units. */
export const MAX_SYSTEM_PROMPT_CHARS = 100_000;
/** Model names as DashScope spells them (`qwen-plus`, `qwen3-max-2025-09-23`, `qwen2.5-vl-72b-instruct`). */
export const MODEL_PATTERN = /^[A-Za-z0-9._-]{1,100}$/;
/** Client-chosen ids for retry-safe sends (also the `Idempotency-Key` header). */
export const CLIENT_MESSAGE_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;
/** Longest API key label. */
export const MAX_KEY_NAME_CHARS = 100;
/**
 * Most results one turn's `tool_results` may carry: as many as a request may define tools
 * (`MAX_TOOLS`); a model calls a few at once, and the results are stored by one statement
 * whatever their number.
 */
export const MAX_TOOL_RESULTS = 128;
/** Largest daily budget accepted, in tokens (any real budget is far below it). */
export const MAX_DAILY_TOKEN_BUDGET = 1_000_000_000_000;

/** A one-line label: no control characters at all (tabs and line breaks included). */
const label = (maxChars: number) =>
  z
    .string()
    .max(maxChars, `must be at most ${maxChars} characters`)
    .refine(
      (text) => !hasControlCharacter(text),
      "must not contain control characters (U+0000–U+001F, U+007F)",
    );

const title = label(MAX_TITLE_CHARS).nullable();
const systemPrompt = z
  .string()
  .max(MAX_SYSTEM_PROMPT_CHARS, `must be at most ${MAX_SYSTEM_PROMPT_CHARS} characters`)
  .refine(
    (text) => !hasControlCharacter(text, MULTILINE_WHITESPACE),
    "must not contain control characters other than tab, line feed and carriage return",
  )
  .nullable();
const model = z.string().regex(MODEL_PATTERN, "must be 1-100 letters, digits, '.', '_' or '-'");
const parameters = generationParametersSchema.nullable();

export const createConversationBody = z.strictObject({
  title: title.optional(),
  system_prompt: systemPrompt.optional(),
  model: model
    .nullable()
    .optional()
    .describe("`null` or absent: the server's default model applies to each turn."),
  parameters: parameters
    .optional()
    .describe("Default DashScope parameters of each turn; a turn's own `parameters` override them."),
});

export const updateConversationBody = createConversationBody.extend({
  archived: z.boolean("must be true or false").optional(),
  active_leaf_id: z
    .string()
    .optional()
    .describe(
      "Any message of the conversation: the active path becomes the path through it to its newest leaf (the leaf with the highest id below it).",
    ),
});

const toolCallId = z.string().min(1).max(256);

/** One result of `tool_results`. */
export const toolResultBody = z.strictObject({
  tool_call_id: toolCallId.describe("The id of the call this answers (from the answer's `tool_calls`)."),
  content: textContentSchema.describe("The tool's output: a string or text parts."),
});

export const turnBody = z.strictObject({
  role: z
    .enum(["user", "tool"])
    .optional()
    .describe(
      "`tool` answers the tool calls of the conversation's latest answer: all of them, with `tool_results`, " +
        "or its only call with `tool_call_id` and `content`. Default `user`.",
    ),
  content: z
    .union([turnContentSchema, textContentSchema])
    .optional()
    .describe(
      "A string or content parts as DashScope accepts them, or `file` parts naming uploaded images (a tool result: text only). Required, except beside `tool_results`.",
    ),
  tool_call_id: toolCallId
    .optional()
    .describe(
      'With `role: "tool"`: the call `content` answers, when the latest answer made exactly one call.',
    ),
  tool_results: z
    .array(toolResultBody)
    .min(1)
    .max(MAX_TOOL_RESULTS)
    .optional()
    .describe(
      'With `role: "tool"`: one result for every call of the latest answer, in any order (stored in the order ' +
        "of the calls), each call once. Not with `tool_call_id` or `content`.",
    ),
  client_message_id: z
    .string()
    .regex(CLIENT_MESSAGE_ID_PATTERN, "must be 1-128 letters, digits or ._:-")
    .optional()
    .describe("Makes the send retry-safe: the same id in the same conversation is answered once."),
  parent_id: z
    .string()
    .nullable()
    .optional()
    .describe(
      "The message the new user message follows. Absent: the active leaf. `null`: the root (an edit of the first message). " +
        "Any other message than the active leaf starts a new branch (an edit): the model sees the path from the root to it, and nothing is deleted.",
    ),
  model: model.optional(),
  parameters: parameters
    .optional()
    .describe("Overrides the conversation's defaults for this turn; `n` must be 1."),
  stream: z
    .boolean("must be true or false")
    .optional()
    .describe("Default `true`: answer as `text/event-stream`."),
  cancel_on_disconnect: z
    .boolean("must be true or false")
    .optional()
    .describe(
      "Default `false`: the answer is generated to the end even if the client goes away (resume it with `/v1/messages/{id}/events`).",
    ),
});

/** `POST /v1/messages/{id}/regenerate`: a turn without a new message. */
export const regenerateBody = turnBody.pick({
  client_message_id: true,
  model: true,
  parameters: true,
  stream: true,
  cancel_on_disconnect: true,
});

export const createApiKeyBody = z.strictObject({
  name: label(MAX_KEY_NAME_CHARS)
    .nullable()
    .optional()
    .describe("A label for the key's owner to recognise it by."),
});

export const budgetBody = z.strictObject({
  daily_token_budget: z
    .int()
    .min(UNLIMITED_BUDGET)
    .max(MAX_DAILY_TOKEN_BUDGET)
    .nullable()
    .describe(
      "Tokens per UTC day; -1 means no limit, 0 means no turns, `null` means the configured default.",
    ),
});

export const rateLimitBody = z.strictObject({
  tier: z.enum(RATE_LIMIT_TIERS).nullable().describe("`null` restores the default tier."),
});

/** `POST /admin/v1/reshard`: one step of a reshard pass. */
export const reshardBody = z.strictObject({
  cursor: reshardCursorSchema
    .nullable()
    .optional()
    .describe("The previous step's `cursor`; absent or `null` starts a pass."),
  max_users: z.int().min(1).max(50).optional().describe("Most users this step moves (default 10)."),
});
