/**
 * In-memory request log, read by tests through the control API. Bounded so long benchmarks keep a flat
 * memory profile. The Authorization header is never recorded — only whether it was accepted.
 */

export const MAX_LOG_ENTRIES = 5_000;
const MAX_TRACKED_BODIES = 10_000;

/**
 * @typedef {{ seq: number, tag: string | null, model: string | null, stream: boolean, include_usage: boolean,
 *   body: unknown, images: import("./image-parts.mjs").ImagePart[], directive: Record<string, unknown>, request_id: string, authorized: boolean, attempt: number,
 *   status: number | null, outcome: null | "completed" | "error" | "client_closed" | "disconnected" | "midstream_error" | "hanging",
 *   started_at: number, ended_at: number | null, tokens_sent: number }} LogEntry
 */

/**
 * Creates the log. `entries` is the live array (oldest first) handed out as `requests` by `startStandIn`.
 */
export function createRequestLog() {
  /** @type {LogEntry[]} */
  const entries = [];
  /** Attempts per body hash; a Map iterates in insertion order, so the oldest hash is evicted first. */
  /** @type {Map<string, number>} */
  const attempts = new Map();
  let seq = 0;

  return {
    entries,
    /**
     * Counts one more attempt of this exact body and returns the 1-based attempt number.
     * @param {string} bodyHash
     */
    nextAttempt(bodyHash) {
      const attempt = (attempts.get(bodyHash) ?? 0) + 1;
      attempts.delete(bodyHash);
      attempts.set(bodyHash, attempt);
      if (attempts.size > MAX_TRACKED_BODIES)
        attempts.delete(/** @type {string} */ (attempts.keys().next().value));
      return attempt;
    },
    /**
     * Appends an entry (evicting the oldest beyond the bound) and returns it for in-place updates.
     * @param {Omit<LogEntry, "seq" | "status" | "outcome" | "started_at" | "ended_at" | "tokens_sent">} fields
     * @returns {LogEntry}
     */
    add(fields) {
      /** @type {LogEntry} */
      const entry = {
        seq: ++seq,
        ...fields,
        status: null,
        outcome: null,
        started_at: Date.now(),
        ended_at: null,
        tokens_sent: 0,
      };
      entries.push(entry);
      if (entries.length > MAX_LOG_ENTRIES) entries.splice(0, entries.length - MAX_LOG_ENTRIES);
      return entry;
    },
    /**
     * Entries carrying a tag, or all entries when `tag` is null.
     * @param {string | null} tag
     */
    find(tag) {
      return tag === null ? [...entries] : entries.filter((e) => e.tag === tag);
    },
  };
}

/**
 * Marks an entry finished; the first final outcome wins (a late socket close must not overwrite "completed").
 * @param {LogEntry} entry
 * @param {NonNullable<LogEntry["outcome"]>} outcome
 */
export function finishEntry(entry, outcome) {
  if (entry.ended_at !== null) return;
  entry.outcome = outcome;
  entry.ended_at = Date.now();
}
