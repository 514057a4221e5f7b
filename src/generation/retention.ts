import { loadConfig } from "../config";
import { logError, logInfo } from "../log/log";
import { type ExpiredConversation, expiredConversations, type ScanPosition } from "../store/retention";
import { shardDatabases } from "../store/shards";

/*
 * Retention (`RETENTION_DAYS`): the daily cron deletes the conversations whose last activity is
 * older, shard by shard, each through its conversation's Durable Object (the path of
 * `DELETE /v1/conversations/{id}`), so an answer in flight is never cut and everything a
 * conversation has goes with it. The steps and what is kept are in `src/store/SCHEMA.md`
 * ("Retention").
 */

/** The daily cron of retention (wrangler.toml `[triggers]`; 03:17 UTC, off the hour's peak). */
export const RETENTION_CRON = "17 3 * * *";

/**
 * A run stops starting new pages this long after it began. A Cron Trigger whose interval is an
 * hour or more may run for up to 15 minutes (developers.cloudflare.com/workers/platform/limits/,
 * "Duration"); 2 minutes leaves most of that unused and bounds a run's load on the shards. A run
 * cut off sooner loses nothing: every delete is whole, and the next run starts from the oldest.
 */
export const RETENTION_RUN_MS = 120_000;

/** Bounds of one run; the defaults are production's, tests pass smaller ones. */
export interface RetentionBounds {
  /** Conversations deleted per shard per run; what is left is deleted by the next runs. */
  perShard: number;
  /** Conversations read per page of the scan. */
  pageSize: number;
  /** Epoch ms after which no new page is started. */
  deadline: number;
}

/**
 * Durable Objects called at once. Workers allow 6 simultaneous outgoing connections per
 * invocation (developers.cloudflare.com/workers/platform/limits/, "Simultaneous open connections").
 */
const CONCURRENCY = 6;

/** What a run did, per shard in the order of `shardDatabases(env)`. */
export interface RetentionReport {
  /** The cutoff (epoch ms): conversations last active before it were expired. Null: retention off. */
  cutoff: number | null;
  shards: { deleted: number; busy: number; failed: number; complete: boolean }[];
}

/**
 * Deletes conversations last active more than `RETENTION_DAYS` ago, on every shard, oldest first,
 * within `bounds`. Each shard's scan is its own: a shard that fails is logged and the others go
 * on. A conversation with an answer in flight, or whose object fails, is left for the next run.
 * A shard is `complete` when nothing expired is left on it but what was skipped.
 */
export async function runRetention(
  env: Env,
  now: number,
  bounds: RetentionBounds = defaultBounds(now),
): Promise<RetentionReport> {
  const days = loadConfig(env).retentionDays;
  if (days === null) return { cutoff: null, shards: [] };
  const cutoff = now - days * 86_400_000;
  const databases = shardDatabases(env);
  const shards = databases.map(() => ({ deleted: 0, busy: 0, failed: 0, complete: false }));
  // Each day starts at the next shard, so a run that reaches its deadline does not leave the same
  // shards behind every day.
  const first = Math.floor(now / 86_400_000) % databases.length;
  for (let k = 0; k < databases.length; k++) {
    const index = (first + k) % databases.length;
    const db = databases[index]!;
    const counts = shards[index]!;
    try {
      counts.complete = await expireShard(env, db, cutoff, bounds, counts);
    } catch (err) {
      logError("retention.shard_failed", {
        shard: index,
        message: "a retention scan failed; the next run continues it",
        error: err,
      });
    }
    logInfo("retention.shard_done", { shard: index, cutoff, ...counts });
  }
  return { cutoff, shards };
}

function defaultBounds(now: number): RetentionBounds {
  return { perShard: 1000, pageSize: 50, deadline: now + RETENTION_RUN_MS };
}

/** One shard's part of a run; returns whether the scan reached its end. */
async function expireShard(
  env: Env,
  db: D1Database,
  cutoff: number,
  bounds: RetentionBounds,
  counts: { deleted: number; busy: number; failed: number },
): Promise<boolean> {
  let after: ScanPosition | null = null;
  for (;;) {
    const left = bounds.perShard - counts.deleted;
    if (left <= 0 || Date.now() >= bounds.deadline) return false;
    const page = await expiredConversations(db, cutoff, after, Math.min(bounds.pageSize, left));
    if (page.length === 0) return true;
    await eachBounded(page, async (conversation) => {
      try {
        const outcome = await expireOne(env, conversation, cutoff);
        if (outcome === "deleted") counts.deleted++;
        else if (outcome === "busy") counts.busy++;
      } catch (err) {
        counts.failed++;
        logError("retention.conversation_failed", {
          user_id: conversation.user_id,
          conversation_id: conversation.id,
          message: "a conversation could not be expired; the next run tries again",
          error: err,
        });
      }
    });
    // Skipped ones stay in the table: the next page starts after them, not at them again.
    const last = page.at(-1)!;
    after = { updated_at: last.updated_at, id: last.id };
  }
}

/** Expires one conversation through its Durable Object, the single writer of its rows. */
function expireOne(env: Env, conversation: ExpiredConversation, cutoff: number) {
  const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversation.id));
  return stub.expire(conversation.id, conversation.user_id, cutoff);
}

/** Runs `work` on every item, {@link CONCURRENCY} at a time. */
async function eachBounded<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
}
