import * as z from "zod";

/** One entry of OpenAI's model list. */
export const modelSchema = z.object({
  id: z.string(),
  object: z.literal("model"),
  created: z.int().describe("Unix seconds; 0 when unknown."),
  owned_by: z.string(),
});

export const modelListSchema = z.object({ object: z.literal("list"), data: z.array(modelSchema) });

export type ModelEntry = z.infer<typeof modelSchema>;
export type ModelList = z.infer<typeof modelListSchema>;
