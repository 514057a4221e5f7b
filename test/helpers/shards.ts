import { env } from "cloudflare:workers";
import { shardDatabases, shardIndex, userDb } from "../../src/store/shards";
import { newUser } from "./api";

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

/**
 * A new user id (as `newUser(name)` makes them) whose rows live on shard `index` of this
 * deployment's shards; with fewer shards, on the last one.
 */
export function userOnShard(name: string, index: number): string {
  const count = shardDatabases(env).length;
  const wanted = Math.min(index, count - 1);
  for (;;) {
    const user = newUser(name);
    if (shardIndex(user, count) === wanted) return user;
  }
}
