import * as z from "zod";
import { isoTime } from "./common";

/** `GET /v1/conversations/{id}/export`: the conversation and every message of every branch, oldest first. */
export const conversationExportOf = <C extends z.ZodType, M extends z.ZodType>(conversation: C, message: M) =>
  z.object({
    conversation,
    messages: z.array(message).describe("Every message of every branch, oldest first (by id)."),
  });

/** `GET /v1/account/export`: everything of the caller, as one document. */
export const accountExportOf = <C extends z.ZodObject, M extends z.ZodType>(conversation: C, message: M) =>
  z.object({
    user_id: z.string().describe("The caller's user id (the identity provider's `sub`)."),
    exported_at: isoTime,
    conversations: z
      .array(conversation.extend({ messages: z.array(message).describe("Every branch, oldest first.") }))
      .describe("Oldest first (by id)."),
    files: z.array(z.never()).describe("Always empty until files exist (../shared/API.md §2.4)."),
  });
