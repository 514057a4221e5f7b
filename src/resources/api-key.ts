import * as z from "zod";
import { isoTime } from "./common";

/** An API key as the API lists it: never the key nor its hash. */
export const apiKeySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  prefix: z.string().describe("The key's first characters, to tell keys apart; never the key."),
  created_at: isoTime,
  last_used_at: isoTime.nullable(),
  revoked_at: isoTime.nullable(),
});

/** A key just created: the only response that carries the key itself. */
export const createdApiKeySchema = z.object({
  id: z.string(),
  name: z.string().nullable(),
  prefix: z.string(),
  key: z.string().describe("The secret key. Shown only in this response; store it now."),
  created_at: isoTime,
});

export const apiKeyListSchema = z.object({ data: z.array(apiKeySchema) });

export type ApiKeyView = z.infer<typeof apiKeySchema>;
export type CreatedApiKey = z.infer<typeof createdApiKeySchema>;
export type ApiKeyList = z.infer<typeof apiKeyListSchema>;
