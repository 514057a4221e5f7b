/** What a query run on every shard gave: the answers of the shards that answered, and which failed. */
export interface FanOut<T> {
  /** The answering shards' results, in shard order. */
  results: T[];
  /** Indexes of the shards whose query failed (0 is `DB`), ascending. */
  failed: number[];
}

/**
 * Runs `run` on every shard at once (one round trip of latency, not one per shard) and waits
 * for all of them: a failing shard is reported in `failed`, never dropped silently, so that a
 * caller can say its answer is incomplete.
 */
export async function onEveryShard<T>(
  shards: readonly D1Database[],
  run: (db: D1Database, shard: number) => Promise<T>,
): Promise<FanOut<T>> {
  const settled = await Promise.allSettled(shards.map((db, shard) => run(db, shard)));
  const out: FanOut<T> = { results: [], failed: [] };
  settled.forEach((answer, shard) => {
    if (answer.status === "fulfilled") out.results.push(answer.value);
    else out.failed.push(shard);
  });
  return out;
}
