import type { D1Queries } from "./sessions";
import { nowMs } from "./time";

/** The operator-controlled columns of a `users` row. */
export interface UserLimitsRow {
  id: string;
  created_at: number;
  /** Tokens per UTC day; `NULL` = the configured default. */
  daily_token_budget: number | null;
  /** One of `RATE_LIMIT_TIERS`; `NULL` = the default tier. */
  rate_limit_tier: string | null;
  blocked_at: number | null;
}

const COLUMNS = "id, created_at, daily_token_budget, rate_limit_tier, blocked_at";

/** The user's limits, or `null` if the user has no row yet. */
export async function getUserLimits(db: D1Queries, userId: string): Promise<UserLimitsRow | null> {
  return db.prepare(`SELECT ${COLUMNS} FROM users WHERE id = ?`).bind(userId).first<UserLimitsRow>();
}

/** The user's rate-limit tier as stored (`null` for none set or no row). */
export async function getRateLimitTier(db: D1Queries, userId: string): Promise<string | null> {
  return db
    .prepare("SELECT rate_limit_tier FROM users WHERE id = ?")
    .bind(userId)
    .first<string>("rate_limit_tier");
}

type LimitColumn = "daily_token_budget" | "rate_limit_tier" | "blocked_at";

/**
 * Writes one column, creating the user's row if missing (operators may configure a user before
 * their first request). `onConflict` is the SET expression for an existing row, in terms of
 * `excluded.<column>` (the new value) and `users.<column>` (the old one).
 */
async function upsertColumn(
  db: D1Queries,
  userId: string,
  column: LimitColumn,
  value: number | string | null,
  onConflict = `excluded.${column}`,
): Promise<UserLimitsRow> {
  const row = await db
    .prepare(
      `INSERT INTO users (id, created_at, ${column}) VALUES (?, ?, ?)
       ON CONFLICT(id) DO UPDATE SET ${column} = ${onConflict}
       RETURNING ${COLUMNS}`,
    )
    .bind(userId, nowMs(), value)
    .first<UserLimitsRow>();
  if (!row) throw new Error("users upsert returned no row");
  return row;
}

/** Sets the user's daily token budget (`null`: back to the default). */
export function setDailyTokenBudget(
  db: D1Queries,
  userId: string,
  budget: number | null,
): Promise<UserLimitsRow> {
  return upsertColumn(db, userId, "daily_token_budget", budget);
}

/** Sets the user's rate-limit tier (`null`: back to the default). */
export function setRateLimitTier(db: D1Queries, userId: string, tier: string | null): Promise<UserLimitsRow> {
  return upsertColumn(db, userId, "rate_limit_tier", tier);
}

/** Blocks the user (keeping the first `blocked_at` if already blocked) or unblocks them. */
export function setBlocked(db: D1Queries, userId: string, blocked: boolean): Promise<UserLimitsRow> {
  return blocked
    ? upsertColumn(db, userId, "blocked_at", nowMs(), "COALESCE(users.blocked_at, excluded.blocked_at)")
    : upsertColumn(db, userId, "blocked_at", null);
}

/**
 * Users of one shard with an id after `after` (`null`: from the first), in id order, at most
 * `limit`. Ids compare as SQLite's BINARY collation does (UTF-8 bytes; {@link compareIds}).
 */
export async function listUserLimits(
  db: D1Queries,
  after: string | null,
  limit: number,
): Promise<UserLimitsRow[]> {
  const { results } = await db
    .prepare(`SELECT ${COLUMNS} FROM users WHERE id > ? ORDER BY id LIMIT ?`)
    .bind(after ?? "", limit)
    .all<UserLimitsRow>();
  return results;
}

const utf8 = new TextEncoder();

/** Orders user ids as SQLite's BINARY collation does: by their UTF-8 bytes (not UTF-16 units). */
export function compareIds(a: string, b: string): number {
  const x = utf8.encode(a);
  const y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
