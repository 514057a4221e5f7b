import * as z from "zod";

/** Where a reshard pass stands (`POST /admin/v1/reshard`): an old shard and the last user id looked at. */
export const reshardCursorSchema = z.strictObject({
  shard: z.int().min(0).describe("An old shard's index (0 is `DB`)."),
  after: z.string().max(512).describe('The last user id looked at in it; `""` from its start.'),
});

/** The answer of one step of a reshard. */
export const reshardStepSchema = z.object({
  from: z.int().describe("The old shard count (`RESHARD_FROM`)."),
  to: z.int().describe("The new shard count (the shards bound)."),
  cursor: reshardCursorSchema
    .nullable()
    .describe("Pass as `cursor` to the next step; `null` when this pass has walked every old shard."),
  scanned: z.int().describe("User ids looked at by this step."),
  moved: z.array(
    z.object({
      user_id: z.string(),
      from_shard: z.int(),
      to_shard: z.int(),
      rows: z.int().describe("Rows moved, every table counted."),
      ms: z.int().describe("How long the user's move took (their writes were refused meanwhile)."),
    }),
  ),
  busy: z.array(z.string()).describe("Users with an answer in flight, left for the next pass."),
  failed: z
    .array(z.object({ user_id: z.string(), message: z.string() }))
    .describe("Users whose copy failed or did not verify: left in their old shard, tried again next pass."),
  queries: z.int().describe("D1 statements this step ran."),
});
