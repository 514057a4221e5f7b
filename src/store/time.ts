/** D1 stores times as INTEGER Unix epoch milliseconds; the API speaks ISO 8601 UTC strings. */

/** Current time as stored in D1 (Unix epoch ms). */
export function nowMs(): number {
  return Date.now();
}

/**
 * An epoch-ms column as the API writes every time: ISO 8601 UTC in whole seconds, e.g.
 * `2026-11-30T09:15:04Z` (`../shared/API.md` §2.5), the only place the API formats one.
 *
 * Fractional seconds are left out for Swift: `JSONDecoder.DateDecodingStrategy.iso8601` parses with
 * an `ISO8601DateFormatter` whose options are `.withInternetDateTime` alone (swift-corelibs-foundation,
 * Sources/Foundation/JSONEncoder.swift, `_iso8601Formatter`), that is `yyyy-MM-dd'T'HH:mm:ssZ` with no
 * `.withFractionalSeconds`, so `…T09:15:04.111Z` fails with "Expected date string to be
 * ISO8601-formatted." Kotlin's `Instant.parse` and Java's `DateTimeFormatter.ISO_INSTANT` read both.
 * The milliseconds are cut, not rounded: a time never moves into the next second, so it stays in
 * the order of the time-ordered ids (UUIDv7, `ids.ts`) that order everything within a second.
 */
export function toIso(ms: number): string;
export function toIso(ms: number | null): string | null;
export function toIso(ms: number | null): string | null {
  // `toISOString()` is `YYYY-MM-DDTHH:mm:ss.sssZ` for the years 0000-9999.
  return ms === null ? null : `${new Date(ms).toISOString().slice(0, 19)}Z`;
}
