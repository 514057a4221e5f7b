import { env } from "cloudflare:workers";
import { shardDatabases, userDb } from "../../src/store/shards";

/** The shard database holding `userId`'s rows, as the Worker chooses it. */
export const dbOf = (userId: string): D1Database => userDb(env, userId);

/** The rows `sql` selects on every shard, shard 0's first: for checks that nothing landed anywhere. */
export async function rowsOnAllShards<Row>(sql: string, ...params: unknown[]): Promise<Row[]> {
  const pages = await Promise.all(
    shardDatabases(env).map((db) =>
      db
        .prepare(sql)
        .bind(...params)
        .all<Row>(),
    ),
  );
  return pages.flatMap((page) => page.results);
}
