import * as z from "zod";
import { errorCodeSchema } from "./codes";

/** `{ "error": { code, message, param? } }`, the body of every error outside the OpenAI-compatible routes. */
export const errorBodySchema = z.object({
  error: z.object({
    code: errorCodeSchema,
    message: z.string().describe("A human sentence; safe to show to developers, not meant for end users."),
    param: z
      .string()
      .optional()
      .describe("Dotted path of the one field at fault, e.g. `parameters.temperature`."),
  }),
});

/** The JSON body of every error response. */
export type ErrorBody = z.infer<typeof errorBodySchema>;
