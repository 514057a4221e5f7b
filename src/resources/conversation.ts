import * as z from "zod";
import { isoTime, pageSchema, timeOrderedId } from "./common";
import { jsonValueSchema } from "./json";

/** A conversation as the API returns it. */
export const conversationSchema = z.object({
  id: timeOrderedId,
  title: z.string().nullable(),
  system_prompt: z.string().nullable(),
  model: z.string().nullable().describe("`null`: the server's default model applies to each turn."),
  parameters: z
    .record(z.string(), jsonValueSchema)
    .describe("Default DashScope parameters of each turn; a turn's own `parameters` override them."),
  archived: z.boolean(),
  active_leaf_id: timeOrderedId
    .nullable()
    .describe(
      "The newest message of the active path (what message lists return and what the next turn follows); `null` before the first message.",
    ),
  created_at: isoTime,
  updated_at: isoTime,
  last_message_at: isoTime.nullable(),
});

const conversationPageSchema = pageSchema(conversationSchema);

export type Conversation = z.infer<typeof conversationSchema>;
export type ConversationPage = z.infer<typeof conversationPageSchema>;
