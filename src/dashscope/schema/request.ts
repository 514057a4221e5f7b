import * as z from "zod";
import { chatMessageSchema } from "./messages";
import { generationParametersShape } from "./parameters";
import { checkRequestRules } from "./rules";
import { WHEN_VALID } from "./when-valid";

/** `n` lies in [1, 4] (`Range of n should be [1, 4]`). */
export const MAX_CHOICES = 4;

/** A complete DashScope Chat Completions request body, with the cross-field rules. */
export const chatCompletionRequestSchema = z
  .strictObject({
    model: z.string().min(1),
    messages: z.array(chatMessageSchema).min(1),
    stream: z.boolean().optional(),
    stream_options: z.strictObject({ include_usage: z.boolean().optional() }).optional(),
    n: z.int().min(1).max(MAX_CHOICES).optional(),
    ...generationParametersShape,
  })
  .superRefine(checkRequestRules, WHEN_VALID);

export type ChatCompletionRequest = z.infer<typeof chatCompletionRequestSchema>;
