import { dbOf } from "./shards";

/** Rows of `table` belonging to `userId` (tables with a `user_id` column). */
export async function countUserRows(
  table: "conversations" | "messages" | "api_keys" | "usage_records",
  userId: string,
): Promise<number> {
  const row = await dbOf(userId)
    .prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE user_id = ?`)
    .bind(userId)
    .first<{ n: number }>();
  return row!.n;
}
