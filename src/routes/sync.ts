import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError, invalidRequest } from "../errors/api-error";
import { decodeSyncCursor, type SyncCursor } from "../store/cursor";
import { readChanges, readSnapshotPage } from "../store/sync";
import { nowMs } from "../store/time";
import { parsePageLimit } from "./validation";

/** Largest page of changes; each upsert carries a whole message. */
export const MAX_SYNC_LIMIT = 500;
/** Page size when a sync sets no `limit`. */
export const DEFAULT_SYNC_LIMIT = 100;

/** The `since` query value: `null` for none (a snapshot); anything not one of our tokens is 400. */
function parseSince(raw: string | undefined): SyncCursor | null {
  if (raw === undefined || raw === "") return null;
  const since = decodeSyncCursor(raw);
  if (!since) throw invalidRequest("since is not a sync token; pass a next_since value unchanged.", "since");
  return since;
}

/**
 * `GET /v1/sync?since=&limit=` (`../shared/API.md` §2.3), mounted at `/v1` behind auth: the
 * caller's changes after `since` in commit order; without `since`, a snapshot of everything as
 * upserts, paged the same way, whose last `next_since` continues the log. 410 `sync_expired` for
 * a token the log cannot continue (older than `SYNC_RETENTION_DAYS`, or from before an account
 * deletion): take a new snapshot.
 */
export const syncRoutes = new Hono<AppEnv>().get("/sync", async (c) => {
  const limit = parsePageLimit(c.req.query("limit"), MAX_SYNC_LIMIT, DEFAULT_SYNC_LIMIT);
  const since = parseSince(c.req.query("since"));
  const { syncRetentionMs } = c.get("config");
  const db = c.get("userD1").db;
  const userId = c.get("userId");
  const result =
    since === null || since.c !== undefined
      ? await readSnapshotPage(db, userId, since, limit, syncRetentionMs, nowMs())
      : await readChanges(db, userId, since, limit, syncRetentionMs, nowMs());
  if (result.kind === "expired") {
    throw new ApiError(
      410,
      "sync_expired",
      "This sync token can no longer be continued; sync again without since for a snapshot.",
      "since",
    );
  }
  return c.json(result.page);
});
