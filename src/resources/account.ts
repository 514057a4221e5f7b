import * as z from "zod";

const count = (what: string) => z.int().nonnegative().describe(what);

/**
 * `DELETE /v1/account` → 202: what the deletion found and is deleting. A repeated deletion finds
 * what is left (nothing, once the first one went through: every count 0).
 */
export const accountDeletionSchema = z.object({
  deleted: z.object({
    conversations: count("Conversations deleted."),
    messages: count("Messages deleted, every branch."),
    files: count("Uploaded files deleted (metadata and bytes), attached to a message or not."),
    api_keys: count("API keys deleted, revoked ones included."),
  }),
});

export type AccountDeletion = z.infer<typeof accountDeletionSchema>;
