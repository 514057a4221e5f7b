import type { UsageCounters, UsageReport } from "../resources/usage";
import type { D1Queries } from "./sessions";
import { batch, type Query, query, type Sql, sql, values } from "./sql";
import type { MessageUsage } from "./types";

/**
 * The usage ledger and daily quotas: one record per answer, daily aggregates per user and
 * model, and reservations that hold a turn's worst case from before the upstream call until
 * its real usage is settled. Reserve-then-settle keeps parallel requests from overspending:
 * the budget check and the reservation are one statement inside one D1 transaction.
 */

/** A budget of this value (or below) means no limit. */
export const UNLIMITED_BUDGET = -1;

export interface QuotaCheck {
  userId: string;
  /** UTC day, YYYY-MM-DD. */
  day: string;
  /** Tokens the call asks for (its whole worst case). */
  tokens: number;
  /**
   * The fewest tokens the call accepts: when less than {@link tokens} fits in what remains of
   * the budget, it is granted what remains, if that is at least this. Absent: {@link tokens}
   * (all or nothing).
   */
  minimumTokens?: number;
  now: number;
  /** The configured default budget ({@link UNLIMITED_BUDGET} for none). */
  defaultBudget: number;
}

export interface QuotaState {
  budget: number;
  used: number;
  reserved: number;
  blocked_at: number | null;
}

/** The user's budget for the day (their own, else the configured default). */
const budget = (q: QuotaCheck) =>
  sql`COALESCE((SELECT daily_token_budget FROM users WHERE id = ${q.userId}), ${q.defaultBudget})`;
/** Tokens settled for the day. */
const used = (q: QuotaCheck) =>
  sql`COALESCE((SELECT SUM(total_tokens) FROM usage_daily
                WHERE user_id = ${q.userId} AND day = ${q.day}), 0)`;
/** Tokens live reservations of the day hold. */
const reserved = (q: QuotaCheck) =>
  sql`COALESCE((SELECT SUM(tokens) FROM quota_reservations
                WHERE user_id = ${q.userId} AND day = ${q.day} AND expires_at > ${q.now}), 0)`;
const blockedAt = (q: QuotaCheck) => sql`(SELECT blocked_at FROM users WHERE id = ${q.userId})`;

/** Reads the user's quota state (to explain a refused reservation and to fill rate headers). */
export function quotaStateQuery(db: D1Queries, q: QuotaCheck): Query<QuotaState> {
  return query(
    db,
    sql`SELECT ${budget(q)} AS budget, ${used(q)} AS used, ${reserved(q)} AS reserved,
               ${blockedAt(q)} AS blocked_at`,
  );
}

/**
 * Reserves for `id` what the call may spend: `q.tokens`, or when less remains of the day's
 * budget (after what was used and what live reservations hold), all that remains, provided that
 * is at least `q.minimumTokens` (default `q.tokens`); an unlimited budget grants `q.tokens`. Made
 * only if the user is not blocked and `gate` (a further SQL condition) holds; no row is written
 * otherwise. The check and the insert are one statement, so parallel calls never share the same
 * remainder. Returns the reservation's row (`tokens`: the grant) when one was made. Every
 * reservation is made here.
 */
export function reservationQuery(
  db: D1Queries,
  id: string,
  q: QuotaCheck,
  expiresAt: number,
  gate: Sql = sql`TRUE`,
): Query<{ tokens: number }> {
  const minimum = q.minimumTokens ?? q.tokens;
  return query(
    db,
    sql`INSERT INTO quota_reservations (id, user_id, day, tokens, expires_at)
        SELECT id, user_id, day, granted, expires_at FROM (
          SELECT ${id} AS id, ${q.userId} AS user_id, ${q.day} AS day, ${expiresAt} AS expires_at,
                 CASE WHEN ${budget(q)} < 0 THEN ${q.tokens}
                      ELSE MIN(${q.tokens}, ${budget(q)} - ${used(q)} - ${reserved(q)}) END AS granted
        )
        WHERE ${gate}
          AND ${blockedAt(q)} IS NULL
          AND granted >= ${minimum}
        RETURNING tokens`,
  );
}

/**
 * Reserves quota for a request outside a conversation (one round trip, see
 * {@link reservationQuery}). Returns the state before the reservation and the tokens granted
 * (`null`: refused).
 */
export async function reserveQuota(
  db: D1Queries,
  id: string,
  q: QuotaCheck,
  expiresAt: number,
): Promise<{ granted: number | null; state: QuotaState }> {
  const { state, reservation } = await batch(db, {
    state: quotaStateQuery(db, q),
    reservation: reservationQuery(db, id, q, expiresAt),
  });
  return { granted: reservation.results[0]?.tokens ?? null, state: state.results[0]! };
}

export interface Settlement {
  /** The answer's message id (or completion id): one record per id, ever. */
  id: string;
  userId: string;
  conversationId: string | null;
  model: string;
  status: string;
  day: string;
  usage: MessageUsage;
  costUsd: number;
  /** Unique per settlement attempt: the aggregates count only the attempt that wrote the record. */
  settleId: string;
  now: number;
}

/** The fields of a {@link Settlement} that say where it counts and what it costs. */
export type LedgerEntry = Pick<Settlement, "day" | "model" | "costUsd" | "settleId">;

/**
 * Statements that record an answer's usage exactly once, add it to the day's aggregate in the
 * same transaction, and release its reservation, in that order. Safe to run again (a retry
 * after a lost response writes nothing twice).
 */
export function settlementQueries(db: D1Queries, s: Settlement) {
  const u = s.usage;
  return {
    record: query(
      db,
      sql`INSERT OR IGNORE INTO usage_records ${values({
        id: s.id,
        user_id: s.userId,
        conversation_id: s.conversationId,
        model: s.model,
        status: s.status,
        day: s.day,
        prompt_tokens: u.prompt_tokens,
        completion_tokens: u.completion_tokens,
        total_tokens: u.total_tokens,
        cached_tokens: u.cached_tokens,
        reasoning_tokens: u.reasoning_tokens,
        estimated: u.estimated ? 1 : 0,
        cost_usd: s.costUsd,
        settled_by: s.settleId,
        created_at: s.now,
      })}`,
    ),
    // Only the attempt whose record was written adds to the aggregate.
    daily: query(
      db,
      sql`INSERT INTO usage_daily (user_id, day, model, requests, prompt_tokens, completion_tokens,
            total_tokens, cached_tokens, reasoning_tokens, cost_usd)
          SELECT user_id, day, model, 1, prompt_tokens, completion_tokens,
            total_tokens, cached_tokens, reasoning_tokens, cost_usd
          FROM usage_records WHERE id = ${s.id} AND settled_by = ${s.settleId}
          ON CONFLICT (user_id, day, model) DO UPDATE SET
            requests = requests + 1,
            prompt_tokens = prompt_tokens + excluded.prompt_tokens,
            completion_tokens = completion_tokens + excluded.completion_tokens,
            total_tokens = total_tokens + excluded.total_tokens,
            cached_tokens = cached_tokens + excluded.cached_tokens,
            reasoning_tokens = reasoning_tokens + excluded.reasoning_tokens,
            cost_usd = cost_usd + excluded.cost_usd`,
    ),
    release: releaseQuery(db, s.id),
  };
}

/** Releases a reservation (an answer that never reached DashScope). */
export function releaseQuery(db: D1Queries, id: string): Query<never> {
  return query(db, sql`DELETE FROM quota_reservations WHERE id = ${id}`);
}

/** Settles usage on its own (one round trip), for requests outside a conversation. */
export async function settleUsage(db: D1Queries, s: Settlement): Promise<void> {
  await batch(db, settlementQueries(db, s));
}

/** A user's usage by day and model for the days `from`..`to` (inclusive, UTC). */
export async function getUsage(
  db: D1Queries,
  userId: string,
  from: string,
  to: string,
): Promise<UsageReport> {
  const { results } = await db
    .prepare(
      `SELECT day, model, requests, prompt_tokens, completion_tokens, total_tokens, cached_tokens, reasoning_tokens, cost_usd
       FROM usage_daily WHERE user_id = ?1 AND day >= ?2 AND day <= ?3 ORDER BY day, model`,
    )
    .bind(userId, from, to)
    .all<UsageRow>();
  return usageReport(from, to, results);
}

type UsageRow = { day: string; model: string } & UsageCounters;

/**
 * Everyone's usage on one shard by day and model for the days `from`..`to` (inclusive, UTC);
 * {@link mergeUsage} adds the shards up.
 */
export async function getShardUsage(db: D1Queries, from: string, to: string): Promise<UsageRow[]> {
  const { results } = await db
    .prepare(
      `SELECT day, model, SUM(requests) AS requests, SUM(prompt_tokens) AS prompt_tokens,
         SUM(completion_tokens) AS completion_tokens, SUM(total_tokens) AS total_tokens,
         SUM(cached_tokens) AS cached_tokens, SUM(reasoning_tokens) AS reasoning_tokens, SUM(cost_usd) AS cost_usd
       FROM usage_daily WHERE day >= ?1 AND day <= ?2 GROUP BY day, model ORDER BY day, model`,
    )
    .bind(from, to)
    .all<UsageRow>();
  return results;
}

/** The shards' usage ({@link getShardUsage}) added up by day and model, as one report. */
export function mergeUsage(from: string, to: string, shards: readonly UsageRow[][]): UsageReport {
  const byKey = new Map<string, UsageRow>();
  for (const row of shards.flat()) {
    const key = `${row.day} ${row.model}`;
    const seen = byKey.get(key);
    if (!seen) byKey.set(key, { ...row });
    else for (const k of COUNTERS) seen[k] += row[k];
  }
  const rows = [...byKey.values()].sort((a, b) =>
    a.day === b.day ? (a.model < b.model ? -1 : a.model > b.model ? 1 : 0) : a.day < b.day ? -1 : 1,
  );
  for (const row of rows) row.cost_usd = Math.round(row.cost_usd * 1e9) / 1e9;
  return usageReport(from, to, rows);
}

const COUNTERS = [
  "requests",
  "prompt_tokens",
  "completion_tokens",
  "total_tokens",
  "cached_tokens",
  "reasoning_tokens",
  "cost_usd",
] as const satisfies readonly (keyof UsageCounters)[];

function usageReport(from: string, to: string, results: UsageRow[]): UsageReport {
  const totals: UsageCounters = {
    requests: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    total_tokens: 0,
    cached_tokens: 0,
    reasoning_tokens: 0,
    cost_usd: 0,
  };
  for (const row of results) {
    for (const k of COUNTERS) totals[k] += row[k];
  }
  totals.cost_usd = Math.round(totals.cost_usd * 1e9) / 1e9;
  return { from, to, data: results, totals };
}

/** The UTC day of a time, YYYY-MM-DD. */
export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** Seconds until the next UTC midnight (when daily budgets reset). */
export function secondsUntilNextUtcDay(ms: number): number {
  const next = Date.UTC(
    new Date(ms).getUTCFullYear(),
    new Date(ms).getUTCMonth(),
    new Date(ms).getUTCDate() + 1,
  );
  return Math.max(1, Math.ceil((next - ms) / 1000));
}
