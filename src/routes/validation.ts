import { invalidRequest } from "../errors/api-error";

/** Largest page a list route returns. */
export const MAX_PAGE_LIMIT = 100;
/** Page size when a list request sets no `limit`. */
export const DEFAULT_PAGE_LIMIT = 20;

/**
 * Parses the `limit` query value of a list route: a plain decimal integer from 1 to `max`
 * ({@link MAX_PAGE_LIMIT}), `fallback` ({@link DEFAULT_PAGE_LIMIT}) when absent; anything else is
 * 400 (param `limit`).
 */
export function parsePageLimit(
  raw: string | undefined,
  max = MAX_PAGE_LIMIT,
  fallback = DEFAULT_PAGE_LIMIT,
): number {
  if (raw === undefined || raw === "") return fallback;
  const n = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 1 && n <= max)) {
    throw invalidRequest(`limit must be an integer from 1 to ${max}.`, "limit");
  }
  return n;
}

/**
 * Decodes the `cursor` query value of a list route with the list's own decoder: `undefined` when
 * absent or empty (the first page); a value the decoder rejects is 400 (param `cursor`).
 */
export function parseCursor<T>(raw: string | undefined, decode: (cursor: string) => T | null): T | undefined {
  if (!raw) return undefined;
  const cursor = decode(raw);
  if (cursor === null)
    throw invalidRequest("The cursor is invalid; pass a next_cursor value unchanged.", "cursor");
  return cursor;
}
