import { section, table } from "../lib/format.mjs";

/**
 * D1 round trips per turn, as every finished turn of the run counted them (the Worker's `turn.finished`
 * log line: each `batch()` or executed statement of the conversation's Durable Object is one).
 * @param {Array<Record<string, unknown>>} turnLogs
 */
export function summarizeRoundTrips(turnLogs) {
  const before = turnLogs.map((l) => Number(l.d1_round_trips_before_upstream));
  const after = turnLogs.map((l) => Number(l.d1_round_trips_after_stream));
  const histogram = (values) => {
    const counts = new Map();
    for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
    return (
      [...counts]
        .sort((a, b) => a[0] - b[0])
        .map(([v, n]) => `${v} (${n} turns)`)
        .join(", ") || "—"
    );
  };
  const statuses = new Map();
  for (const l of turnLogs) statuses.set(l.status, (statuses.get(l.status) ?? 0) + 1);
  const markdown = section(
    "D1 round trips per turn",
    `Counted by the Worker for every finished turn of this run (${turnLogs.length} turns; statuses: ${[...statuses].map(([s, n]) => `${s} ${n}`).join(", ") || "—"}).`,
    table(
      ["phase", "round trips"],
      [
        ["before the upstream call", histogram(before)],
        ["after the stream ends", histogram(after)],
      ],
    ),
  );
  return { markdown, trips: { before, after } };
}
