import * as z from "zod";
import { isoTime, pageSchema, timeOrderedId } from "./common";

/** One place a search matched: a message's text or a conversation's title. */
export const searchHitSchema = z.object({
  conversation_id: timeOrderedId,
  conversation_title: z.string().nullable(),
  message_id: timeOrderedId.nullable().describe("`null` when the hit is the conversation's title."),
  role: z
    .enum(["user", "assistant"])
    .nullable()
    .describe("The message's role; `null` when the hit is the conversation's title."),
  snippet: z
    .string()
    .describe(
      "The matched text, or up to about 200 UTF-16 code units of it around the first match; `…` marks a cut.",
    ),
  highlights: z
    .array(z.tuple([z.int().min(0), z.int().min(0)]))
    .describe(
      "`[start, end)` of each match in `snippet`, in UTF-16 code units (JavaScript string indexes), in order, not overlapping.",
    ),
  created_at: isoTime.describe("When the message was sent; for a title, when the conversation was created."),
});

export const searchPageSchema = pageSchema(searchHitSchema);

export type SearchHit = z.infer<typeof searchHitSchema>;
export type SearchPage = z.infer<typeof searchPageSchema>;
