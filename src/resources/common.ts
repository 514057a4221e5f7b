import * as z from "zod";

/** A time as the API writes it (`store/time.ts`, `toIso`): whole seconds, UTC. */
export const isoTime = z.iso
  .datetime({ precision: 0 })
  .describe("ISO 8601 in UTC, whole seconds (no fractional part): `2026-11-30T09:15:04Z`.");

/** The id of a conversation or message. */
export const timeOrderedId = z.string().describe("Opaque, time-ordered id");

const nextCursor = z
  .string()
  .nullable()
  .describe("Pass as `cursor` for the next page; `null` on the last page.");

/** One page of a keyset-paginated list of `item`. */
export const pageSchema = <T extends z.ZodType>(item: T) =>
  z.object({ data: z.array(item), next_cursor: nextCursor });
