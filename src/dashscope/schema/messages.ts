import * as z from "zod";
import { messageContentSchema, textContentSchema } from "./content";
import { MAX_INT32 } from "./parameters";
import { WHEN_VALID } from "./when-valid";

/** A tool call as the assistant made it, echoed back in the history. */
export const toolCallSchema = z.strictObject({
  id: z.string().min(1),
  type: z.literal("function"),
  function: z.strictObject({
    name: z.string().min(1),
    /** The model's arguments verbatim: a JSON text, though models do not always produce valid JSON. */
    arguments: z.string(),
  }),
  index: z.int().min(0).max(MAX_INT32).optional(),
});

export const systemMessageSchema = z.strictObject({
  role: z.literal("system"),
  content: textContentSchema,
});

export const userMessageSchema = z.strictObject({
  role: z.literal("user"),
  content: messageContentSchema,
});

export const assistantMessageSchema = z
  .strictObject({
    role: z.literal("assistant"),
    // Qwen-Omni and the rest accept only text from the assistant side.
    content: textContentSchema.nullable().optional(),
    reasoning_content: z.string().nullable().optional(),
    tool_calls: z.array(toolCallSchema).min(1).optional(),
    /** Partial mode: the model continues this (last) message instead of starting a new one. */
    partial: z.boolean().optional(),
  })
  .superRefine((message, ctx) => {
    if (message.content == null && !message.tool_calls) {
      ctx.addIssue({
        code: "custom",
        path: ["content"],
        message: 'is required unless the message has "tool_calls"',
      });
    }
  }, WHEN_VALID);

export const toolMessageSchema = z.strictObject({
  role: z.literal("tool"),
  content: textContentSchema,
  tool_call_id: z.string().min(1),
});

/** One message of the conversation sent upstream, discriminated by `role`. */
export const chatMessageSchema = z.discriminatedUnion("role", [
  systemMessageSchema,
  userMessageSchema,
  assistantMessageSchema,
  toolMessageSchema,
]);

export type ChatMessage = z.infer<typeof chatMessageSchema>;
