import { type MoveOutcome, moveUser, type QueryCounter, usersAfter } from "./reshard";
import { allShards, reshardFrom, type ShardEnv, shardIndex } from "./shards";

/**
 * One bounded step of a reshard (`POST /admin/v1/reshard`): walks the old shards' users in id
 * order from `cursor` and moves those whose shard differs under the new count. The caller
 * (`npm run reshard`) repeats it with the returned cursor until a whole pass ends with nothing
 * busy or failed. Nothing is kept between steps but the cursor: a step cut off anywhere, or a
 * run started again from no cursor, finds what is left in the shards themselves (a moved user's
 * old rows are gone; a `moving` or `moved` one is finished by {@link moveUser}).
 */

/** Where a pass stands: shard `shard` (< the old count), after user id `after`. */
export interface ReshardCursor {
  shard: number;
  after: string;
}

export interface ReshardStep {
  /** The old and new shard counts. */
  from: number;
  to: number;
  /** Where the next step starts; null when this pass has walked every old shard. */
  cursor: ReshardCursor | null;
  /** User ids looked at in this step. */
  scanned: number;
  moved: { user_id: string; from_shard: number; to_shard: number; rows: number; ms: number }[];
  /** Users with an answer in flight: left for a later pass. */
  busy: string[];
  failed: { user_id: string; message: string }[];
  /** D1 statements run by this step. */
  queries: number;
}

/** Thrown when no reshard is configured (`RESHARD_FROM` unset). */
export class NoReshardError extends Error {}

/** Users read per scan page. */
const SCAN_PAGE = 200;
/**
 * A step starts no new user past this many statements: D1 allows 1,000 per Worker invocation on
 * the paid plan (developers.cloudflare.com/d1/platform/limits/). A user of 1,000 messages takes
 * about 120 (test/reshard.test.ts); one that needs more than the rest of the step is undone and
 * reported as failed (reshard.ts `MAX_STATEMENTS`).
 */
const QUERY_BUDGET = 600;

/** Runs one step: at most `maxUsers` users moved, none started after `budgetMs` of wall time. */
export async function reshardStep(
  env: ShardEnv,
  cursor: ReshardCursor | null,
  maxUsers: number,
  budgetMs: number,
): Promise<ReshardStep> {
  const shards = allShards(env);
  const from = reshardFrom(env, shards.length);
  if (from === null) throw new NoReshardError("RESHARD_FROM is not set: there is no reshard to run.");
  const deadline = Date.now() + budgetMs;
  const n: QueryCounter = { queries: 0 };
  const step: ReshardStep = {
    from,
    to: shards.length,
    cursor: null,
    scanned: 0,
    moved: [],
    busy: [],
    failed: [],
    queries: 0,
  };
  let at: ReshardCursor = cursor ?? { shard: 0, after: "" };
  const more = () => step.moved.length < maxUsers && Date.now() < deadline && n.queries < QUERY_BUDGET;
  while (at.shard < from && more()) {
    const ids = await usersAfter(shards[at.shard]!, at.after, SCAN_PAGE, n);
    for (const userId of ids) {
      if (!more()) break;
      at = { shard: at.shard, after: userId };
      step.scanned++;
      const target = shardIndex(userId, shards.length);
      if (target === at.shard) continue;
      const outcome: MoveOutcome = await moveUser(
        shards[at.shard]!,
        shards[target]!,
        userId,
        { fromCount: from, toCount: shards.length, targetShard: target },
        n,
      );
      if (outcome.status === "moved") {
        step.moved.push({
          user_id: userId,
          from_shard: at.shard,
          to_shard: target,
          rows: outcome.rows,
          ms: outcome.ms,
        });
      } else if (outcome.status === "busy") step.busy.push(userId);
      else step.failed.push({ user_id: userId, message: outcome.message });
    }
    if (ids.length < SCAN_PAGE && at.after === (ids.at(-1) ?? at.after))
      at = { shard: at.shard + 1, after: "" };
  }
  step.cursor = at.shard < from ? at : null;
  step.queries = n.queries;
  return step;
}
