import * as z from "zod";
import { isoTime } from "./common";
import { fileSchema } from "./file";

/**
 * `GET /v1/conversations/{id}/export`: the conversation, every message of every branch (oldest
 * first), and the files its messages refer to.
 */
export const conversationExportOf = <C extends z.ZodType, M extends z.ZodType>(conversation: C, message: M) =>
  z.object({
    conversation,
    messages: z.array(message).describe("Every message of every branch, oldest first (by id)."),
    files: z
      .array(fileSchema)
      .describe(
        "The live files the conversation's messages refer to, by id (metadata; the bytes are at `GET /v1/files/{id}/content`).",
      ),
  });

/** `GET /v1/account/export`: everything of the caller, as one document. */
export const accountExportOf = <C extends z.ZodObject, M extends z.ZodType>(conversation: C, message: M) =>
  z.object({
    user_id: z.string().describe("The caller's user id (the identity provider's `sub`)."),
    exported_at: isoTime,
    conversations: z
      .array(conversation.extend({ messages: z.array(message).describe("Every branch, oldest first.") }))
      .describe("Oldest first (by id)."),
    files: z
      .array(fileSchema)
      .describe(
        "Every live file of the caller, attached to a message or not, by id (metadata; the bytes are at `GET /v1/files/{id}/content`).",
      ),
  });
