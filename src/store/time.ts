/** D1 stores times as INTEGER Unix epoch milliseconds; the API speaks ISO 8601 UTC strings. */

/** Current time as stored in D1 (Unix epoch ms). */
export function nowMs(): number {
  return Date.now();
}

/** An epoch-ms column as an ISO 8601 UTC string, e.g. `2025-01-31T12:00:00.000Z`. */
export function toIso(ms: number): string;
export function toIso(ms: number | null): string | null;
export function toIso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}
