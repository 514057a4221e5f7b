import * as z from "zod";
import { timeOrderedId } from "./common";
import { conversationSchema } from "./conversation";
import { messageSchema } from "./message";

const seq = z
  .int()
  .nonnegative()
  .describe(
    "The change's position in the caller's change log (per user, increasing in commit order). In a snapshot, every change carries the log position the snapshot is at least as new as.",
  );

/**
 * One entry of `GET /v1/sync` (`../shared/API.md` §2.3): an upsert carries the conversation or
 * message as it is when the sync reads it; a delete (a conversation's tombstone) carries `null`.
 */
export const changeOf = <C extends z.ZodType, M extends z.ZodType>(conversation: C, message: M) =>
  z.union([
    z.object({
      seq,
      type: z.literal("conversation"),
      op: z.literal("upsert"),
      id: timeOrderedId,
      conversation_id: timeOrderedId.describe("Equal to `id` for a conversation."),
      data: conversation,
    }),
    z.object({
      seq,
      type: z.literal("message"),
      op: z.literal("upsert"),
      id: timeOrderedId,
      conversation_id: timeOrderedId,
      data: message,
    }),
    z
      .object({
        seq,
        type: z.literal("conversation"),
        op: z.literal("delete"),
        id: timeOrderedId,
        conversation_id: timeOrderedId,
        data: z.null(),
      })
      .describe(
        "The conversation was deleted: drop it and all its messages (their deletion has no changes of its own).",
      ),
  ]);

/** A page of changes after a `since` token, or of a snapshot. */
export const syncPageOf = <Ch extends z.ZodType>(change: Ch) =>
  z.object({
    changes: z.array(change).describe("In commit order; apply them in this order."),
    next_since: z
      .string()
      .describe(
        "Opaque: pass as `since` for the next page, and keep it for the next sync when `has_more` is false.",
      ),
    has_more: z.boolean().describe("Whether more changes (or more of the snapshot) follow right away."),
  });

const changeSchema = changeOf(conversationSchema, messageSchema);
const syncPageSchema = syncPageOf(changeSchema);

export type Change = z.infer<typeof changeSchema>;
export type SyncPage = z.infer<typeof syncPageSchema>;
