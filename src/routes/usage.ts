import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { invalidRequest } from "../errors/api-error";
import { getUsage, utcDay } from "../store/usage";

/** Longest range one usage request may cover, in days. */
export const MAX_USAGE_RANGE_DAYS = 366;
/** Days covered when the request names no `from`. */
const DEFAULT_RANGE_DAYS = 30;
const DAY_MS = 86_400_000;
const DAY_PATTERN = /^\d{4}-\d{2}-\d{2}$/;

/** Validates `from`/`to` (UTC days, inclusive); defaults to the last 30 days up to today. */
export function parseUsageRange(
  query: { from?: string; to?: string },
  now = Date.now(),
): { from: string; to: string } {
  const to = checkDay("to", query.to ?? utcDay(now));
  const from = checkDay(
    "from",
    query.from ?? utcDay(Date.parse(`${to}T00:00:00Z`) - (DEFAULT_RANGE_DAYS - 1) * DAY_MS),
  );
  if (from > to) throw invalidRequest("from must not be after to.", "from");
  const days = (Date.parse(`${to}T00:00:00Z`) - Date.parse(`${from}T00:00:00Z`)) / DAY_MS + 1;
  if (days > MAX_USAGE_RANGE_DAYS)
    throw invalidRequest(`A usage range covers at most ${MAX_USAGE_RANGE_DAYS} days.`, "from");
  return { from, to };
}

/** A real calendar day as YYYY-MM-DD (2026-02-30 is not one). */
function checkDay(name: string, value: string): string {
  const ms = DAY_PATTERN.test(value) ? Date.parse(`${value}T00:00:00Z`) : Number.NaN;
  if (Number.isNaN(ms) || utcDay(ms) !== value)
    throw invalidRequest(`${name} must be a date as YYYY-MM-DD.`, name);
  return value;
}

/** `GET /usage?from=&to=`: the caller's token usage and estimated cost by day and model. */
export const usageRoutes = new Hono<AppEnv>().get("/usage", async (c) => {
  const { from, to } = parseUsageRange({ from: c.req.query("from"), to: c.req.query("to") });
  return c.json(await getUsage(c.get("userD1").db, c.get("userId"), from, to));
});
