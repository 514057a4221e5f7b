import { logError, logInfo } from "../log/log";
import {
  type AccountDeletionRow,
  beginAccountDeletion,
  claimAccountDeletion,
  deleteDeletionMessages,
  deletionFiles,
  deletionItems,
  dropDeletionItems,
  finishAccountDeletion,
  finishHiding,
  releaseAccountDeletion,
  streamingConversations,
  unfinishedAccountDeletions,
} from "../store/account-deletion";
import { apiKeyCacheKey } from "../store/api-keys";
import { purgeHiddenFiles } from "../store/file-lifecycle";
import { allShards, userDb } from "../store/shards";
import { nowMs } from "../store/time";

/*
 * Account deletion (`DELETE /v1/account`, `../shared/API.md` §2.3): hidden before the request
 * answers, purged from everywhere else after it. The steps and what is kept are in
 * `src/store/SCHEMA.md` ("Account deletion").
 */

/**
 * How long a run holds a deletion before another may take it over: longer than a run lasts
 * (`waitUntil` work gets 30 s after the response, developers.cloudflare.com/workers/runtime-apis/context/),
 * short enough that the next cron run takes over one whose run died.
 */
export const DELETION_LEASE_MS = 60_000;
/** A run stops starting new steps this long after it began, within the 30 s of `waitUntil`. */
export const PURGE_RUN_MS = 20_000;
/** Messages per DELETE statement while hiding: bounded, so no single write holds the database long. */
const MESSAGES_PER_STATEMENT = 1000;
/** Items read per step (at most 90: crossing them off binds each one, D1 takes 100 values). */
const ITEMS_PER_STEP = 50;
/** Files purged per step: one R2 delete call and one D1 statement. */
const FILES_PER_STEP = 100;
/** Durable Objects (or KV entries) purged at once: Workers keep 6 connections open per request. */
const CONCURRENCY = 6;
/** Deletions one cron run looks at. */
const DELETIONS_PER_RUN = 10;

/** What the 202 of `DELETE /v1/account` reports. */
export interface DeletedCounts {
  conversations: number;
  messages: number;
  files: number;
  api_keys: number;
}

/**
 * Hides everything of `userId` and returns what it found: stops the answers in flight (each
 * through its conversation's object, which settles the answer's usage and deletes the
 * conversation), hides the files (404 from then on), deletes the API keys, every message and
 * conversation from D1 and the keys' cached lookups from KV (at this location; elsewhere a cached lookup lasts as for a revoked key:
 * up to `API_KEY_CACHE_TTL_SECONDS` plus KV's propagation delay), and starts a new sync epoch.
 * Then the caller runs {@link purgeAccountDeletion} in the background (its lease is the caller's).
 */
export async function deleteAccount(
  env: Env,
  userId: string,
): Promise<{ deletion: AccountDeletionRow; deleted: DeletedCounts }> {
  const begun = await beginAccountDeletion(userDb(env, userId), userId, nowMs(), DELETION_LEASE_MS);
  // Hidden now: the purge that follows must not hide again (a second new sync epoch would expire
  // the tokens of a snapshot taken after the 202).
  const deletion = { ...begun.deletion, hidden_at: await hide(env, begun.deletion, begun.streaming) };
  await forgetApiKeys(env, deletion, false);
  const { conversations, messages, files, api_keys } = deletion;
  logInfo("account.deletion_hidden", {
    user_id: userId,
    deletion_id: deletion.id,
    conversations,
    messages,
    files,
  });
  return { deletion, deleted: { conversations, messages, files, api_keys } };
}

/**
 * Continues a deletion this run holds (see {@link claimAccountDeletion}): whatever of hiding is
 * left (a request cut off halfway), the API keys' cached lookups, each conversation's object
 * (its answer in flight stopped, its storage emptied), the files (R2 objects, then rows), then the
 * ledger before the deletion's day.
 * Stops starting new steps at `deadline` (epoch ms) and gives the lease up; every step is
 * idempotent, so the next run picks up where this one stopped. Returns whether it finished.
 */
export async function purgeAccountDeletion(
  env: Env,
  deletion: AccountDeletionRow,
  deadline: number,
): Promise<boolean> {
  const db = userDb(env, deletion.user_id);
  try {
    if (deletion.hidden_at === null) await hide(env, deletion, await streamingConversations(db, deletion));
    if (!(await forgetApiKeys(env, deletion, true))) {
      await releaseAccountDeletion(db, deletion.id);
      return false;
    }
    for (;;) {
      const ids = await deletionItems(db, deletion.id, "conversation", ITEMS_PER_STEP);
      if (ids.length === 0) break;
      const done = await eachBounded(ids, (id) => ownerOf(env, id).purge(id, deletion.user_id));
      await dropDeletionItems(db, deletion.id, "conversation", done);
      // A failed object is left for the next run rather than retried in a loop here.
      if (done.length < ids.length || Date.now() >= deadline) {
        await releaseAccountDeletion(db, deletion.id);
        return false;
      }
    }
    // The files hidden when the deletion began: R2 objects, then rows; a row is its own item
    // (it is gone once purged), so a run cut off here resumes at the first one left.
    for (;;) {
      const ids = await deletionFiles(db, deletion, FILES_PER_STEP);
      if (ids.length === 0) break;
      await purgeHiddenFiles(db, env.FILES, ids);
      if (Date.now() >= deadline) {
        await releaseAccountDeletion(db, deletion.id);
        return false;
      }
    }
    await finishAccountDeletion(db, deletion, nowMs());
    logInfo("account.deletion_purged", { user_id: deletion.user_id, deletion_id: deletion.id });
    return true;
  } catch (err) {
    logError("account.deletion_failed", {
      user_id: deletion.user_id,
      deletion_id: deletion.id,
      message: "an account purge step failed; the next run continues it",
      error: err,
    });
    await releaseAccountDeletion(db, deletion.id).catch(() => undefined);
    return false;
  }
}

/**
 * Continues unfinished deletions that no run holds, oldest first, until `deadline`: the user's
 * (a retried `DELETE /v1/account`, on the user's shard), or everyone's (`userId` null: the cron,
 * which also takes over the deletions whose run died, once their lease has expired), on every
 * shard at once, at most {@link DELETIONS_PER_RUN} per shard; a failing shard does not hold up
 * the others.
 */
export async function purgeUnfinishedAccountDeletions(
  env: Env,
  userId: string | null,
  deadline: number,
): Promise<void> {
  if (userId !== null) return purgeOnShard(env, userDb(env, userId), userId, deadline);
  const runs = await Promise.allSettled(allShards(env).map((db) => purgeOnShard(env, db, null, deadline)));
  runs.forEach((run, shard) => {
    if (run.status === "rejected")
      logError("account.deletion_scan_failed", {
        shard,
        message: "listing a shard's unfinished account deletions failed; the next run retries it",
        error: run.reason,
      });
  });
}

async function purgeOnShard(
  env: Env,
  db: D1Database,
  userId: string | null,
  deadline: number,
): Promise<void> {
  const ids = await unfinishedAccountDeletions(db, userId, nowMs(), DELETIONS_PER_RUN);
  for (const id of ids) {
    if (Date.now() >= deadline) return;
    const claimed = await claimAccountDeletion(db, id, nowMs(), DELETION_LEASE_MS);
    if (claimed) await purgeAccountDeletion(env, claimed, deadline);
  }
}

/**
 * Removes the account from D1's reads: answers in flight are stopped first (so each settles its
 * usage while its rows exist, and every stream of it ends with `message.failed`), then the
 * messages go in bounded statements, then the conversations with the sync epoch in one batch.
 * Returns when it was hidden (epoch ms).
 */
async function hide(env: Env, deletion: AccountDeletionRow, streaming: readonly string[]): Promise<number> {
  const stopped = await eachBounded(streaming, (id) =>
    ownerOf(env, id).deleteConversation(id, deletion.user_id),
  );
  if (stopped.length < streaming.length) {
    // Their rows are deleted below all the same; the purge of their objects stops them then.
    logError("account.deletion_stop_failed", {
      user_id: deletion.user_id,
      deletion_id: deletion.id,
      message: `${streaming.length - stopped.length} answer(s) in flight could not be stopped at once`,
    });
  }
  let deleted: number;
  const db = userDb(env, deletion.user_id);
  do deleted = await deleteDeletionMessages(db, deletion, MESSAGES_PER_STATEMENT);
  while (deleted === MESSAGES_PER_STATEMENT);
  const hiddenAt = nowMs();
  await finishHiding(db, deletion, hiddenAt);
  return hiddenAt;
}

/**
 * Deletes the cached lookups of the deletion's API keys from KV; returns whether every delete
 * succeeded. With `crossOff`, each deleted one is crossed off (a failed one is left for the next
 * run). The request deletes them without crossing off, and the purge after it deletes them once
 * more: a request that read a key from D1 just before the keys were deleted may cache its lookup
 * again after the first delete (the race of a revoked key, README "API keys").
 */
async function forgetApiKeys(env: Env, deletion: AccountDeletionRow, crossOff: boolean): Promise<boolean> {
  const db = userDb(env, deletion.user_id);
  for (let after = ""; ; ) {
    const hashes = await deletionItems(db, deletion.id, "api_key", ITEMS_PER_STEP, after);
    if (hashes.length === 0) return true;
    const done = await eachBounded(hashes, (hash) => env.CACHE.delete(apiKeyCacheKey(hash)));
    if (crossOff) await dropDeletionItems(db, deletion.id, "api_key", done);
    if (done.length < hashes.length) return false;
    after = hashes.at(-1)!;
  }
}

/** Runs `work` on every item, {@link CONCURRENCY} at a time; returns the items it succeeded on. */
async function eachBounded<T>(items: readonly T[], work: (item: T) => Promise<unknown>): Promise<T[]> {
  const done: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await work(item);
        done.push(item);
      } catch (err) {
        logError("account.deletion_item_failed", { message: "an account purge item failed", error: err });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
  return done;
}

/** The Durable Object that is the single writer of a conversation. */
function ownerOf(env: Env, conversationId: string) {
  return env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conversationId));
}
