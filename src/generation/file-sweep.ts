import { loadConfig } from "../config";
import { logError, logInfo } from "../log/log";
import {
  type AgeCursor,
  existingFileIds,
  hiddenFiles,
  hideUnattachedFiles,
  purgeHiddenFiles,
} from "../store/file-lifecycle";
import { fileObjectKey } from "../store/files";
import { allShards } from "../store/shards";
import { nowMs } from "../store/time";

/*
 * The cron's file sweeps (`scheduled`, every 10 minutes, wrangler.toml). Each is bounded per run
 * (steps and a deadline) and keeps its place between runs, so a large backlog is worked off over
 * several runs instead of one long one. What each deletes and why is in `src/store/SCHEMA.md`,
 * "File lifecycle".
 *
 * Rows live in user shards (`store/shards.ts`): the row sweeps run on every shard in turn, each
 * shard with its own step bound and its own cursor (the shared deadline still ends the run); the R2
 * bucket is shared by all shards, so an object is an orphan only when no shard has its row.
 */

/** A run stops starting new steps this long after it began (as the account purge, which runs alongside). */
export const FILE_SWEEP_RUN_MS = 20_000;
/**
 * A delete that started this long ago and still has its row was cut off: its own run (a request,
 * a conversation's delete) ends within seconds. Finishing one still running would only repeat it.
 */
export const HIDDEN_FILE_GRACE_MS = 60_000;
/**
 * An object under `files/` with no row, this old, is an upload cut off between the R2 put and the
 * D1 insert (`createFile`). A younger one may be an upload whose insert is still to come.
 */
export const ORPHAN_OBJECT_AGE_MS = 3_600_000;

/** Hidden files finished per step: one R2 delete call and one D1 statement. */
const HIDDEN_PER_STEP = 100;
const HIDDEN_STEPS = 10;
/** Live files past the TTL read per step (most are attached, and skipped). */
const SCAN_PER_STEP = 500;
const SCAN_STEPS = 20;
/** R2 returns at most 1,000 keys per list call (developers.cloudflare.com/r2/api/workers/workers-api-reference/). */
const OBJECTS_PER_PAGE = 1000;
const OBJECT_PAGES = 5;

/**
 * Where the sweeps continue next run, in KV (`CACHE`): losing it costs a rescan, nothing else.
 * The unattached sweep keeps one per shard (`file-sweep:unattached` for shard 0, `…:<n>` for shard n).
 */
const UNATTACHED_CURSOR_KEY = "file-sweep:unattached";
const OBJECTS_CURSOR_KEY = "file-sweep:objects";

/** What one run deleted. */
export interface FileSweepCounts {
  /** Deletes that had been cut off, finished. */
  finished: number;
  /** Uploads no message referred to, older than the TTL. */
  unattached: number;
  /** R2 objects no row named. */
  orphans: number;
}

/**
 * Runs the three sweeps, each until done, its step bound, or `deadline` (epoch ms, real time):
 * finishes deletes cut off before `now - HIDDEN_FILE_GRACE_MS`; deletes the live files no message
 * refers to created before `now - UNATTACHED_FILE_TTL_HOURS`; deletes the objects under `files/`
 * with no row uploaded before `now - ORPHAN_OBJECT_AGE_MS`. `now` is the run's clock for ages (the
 * cron's `scheduledTime`). A sweep that fails is logged and left to the next run; the others run.
 */
export async function sweepFiles(env: Env, now: number, deadline: number): Promise<FileSweepCounts> {
  const counts: FileSweepCounts = { finished: 0, unattached: 0, orphans: 0 };
  const sweeps = {
    finished: finishHidden,
    unattached: deleteUnattached,
    orphans: deleteOrphanObjects,
  } satisfies Record<keyof FileSweepCounts, (env: Env, now: number, deadline: number) => Promise<number>>;
  for (const sweep of ["finished", "unattached", "orphans"] as const) {
    if (Date.now() >= deadline) break;
    try {
      counts[sweep] = await sweeps[sweep](env, now, deadline);
    } catch (err) {
      logError("files.sweep_failed", {
        sweep,
        message: "a file sweep failed; the next run continues it",
        error: err,
      });
    }
  }
  logInfo("files.swept", { ...counts });
  return counts;
}

async function finishHidden(env: Env, now: number, deadline: number): Promise<number> {
  let finished = 0;
  for (const db of allShards(env)) {
    for (let step = 0; step < HIDDEN_STEPS && Date.now() < deadline; step++) {
      const ids = await hiddenFiles(db, now - HIDDEN_FILE_GRACE_MS, HIDDEN_PER_STEP);
      finished += await purgeHiddenFiles(db, env.FILES, ids);
      if (ids.length < HIDDEN_PER_STEP) break;
    }
  }
  return finished;
}

async function deleteUnattached(env: Env, now: number, deadline: number): Promise<number> {
  const createdBefore = now - loadConfig(env).unattachedFileTtlMs;
  let deleted = 0;
  for (const [index, db] of allShards(env).entries()) {
    if (Date.now() >= deadline) break;
    const key = index === 0 ? UNATTACHED_CURSOR_KEY : `${UNATTACHED_CURSOR_KEY}:${index}`;
    let cursor = await env.CACHE.get<AgeCursor>(key, "json");
    for (let step = 0; step < SCAN_STEPS && Date.now() < deadline; step++) {
      const { hidden, next } = await hideUnattachedFiles(db, createdBefore, cursor, SCAN_PER_STEP, nowMs());
      deleted += await purgeHiddenFiles(db, env.FILES, hidden);
      cursor = next;
      if (!cursor) break;
    }
    await saveCursor(env, key, cursor);
  }
  return deleted;
}

async function deleteOrphanObjects(env: Env, now: number, deadline: number): Promise<number> {
  const prefix = fileObjectKey("");
  const uploadedBefore = now - ORPHAN_OBJECT_AGE_MS;
  let startAfter = await env.CACHE.get(OBJECTS_CURSOR_KEY);
  let deleted = 0;
  for (let page = 0; page < OBJECT_PAGES && Date.now() < deadline; page++) {
    const listed = await env.FILES.list({
      prefix,
      startAfter: startAfter ?? undefined,
      limit: OBJECTS_PER_PAGE,
    });
    const old = listed.objects.filter((o) => o.uploaded.getTime() < uploadedBefore);
    // Named on any shard: the bucket is shared, a row may be on any of them. A shard that fails
    // fails the page, so no object is deleted on a partial answer.
    const ids = old.map((o) => o.key.slice(prefix.length));
    const perShard = await Promise.all(allShards(env).map((db) => existingFileIds(db, ids)));
    const named = new Set(perShard.flatMap((found) => [...found]));
    const orphans = old.filter((o) => !named.has(o.key.slice(prefix.length))).map((o) => o.key);
    if (orphans.length > 0) await env.FILES.delete(orphans);
    deleted += orphans.length;
    startAfter = listed.truncated ? (listed.objects.at(-1)?.key ?? null) : null;
    if (!startAfter) break;
  }
  await saveCursor(env, OBJECTS_CURSOR_KEY, startAfter);
  return deleted;
}

/** Keeps a sweep's place for the next run, or forgets it once the sweep reached the end. */
async function saveCursor(env: Env, key: string, cursor: AgeCursor | string | null): Promise<void> {
  if (cursor === null) await env.CACHE.delete(key);
  else await env.CACHE.put(key, typeof cursor === "string" ? cursor : JSON.stringify(cursor));
}
