import { ms, section, table } from "../lib/format.mjs";
import { TIMELINE_PING_INTERVAL_MS } from "../lib/harness.mjs";
import { prompt } from "../lib/paths.mjs";
import { recordTimeline } from "../lib/timeline-client.mjs";

/** The slow upstream: its first token after 5 s (issue 12's case, shorter than its 16.5 s for the bench's sake). */
const SLOW_MS = 5000;
const ANSWER_TOKENS = 5;
/** D1 round trips the timeline is recorded at (see the ttft-d1 scenario). */
const D1_DELAYS_MS = [0, 80];

/** Upstream shapes: headers at once then the first token after 5 s; or nothing at all, headers included, for 5 s. */
const UPSTREAMS = [
  { label: "headers at once, first token after 5 s", directive: "headers_first", holdsHeaders: false },
  { label: "headers and first token after 5 s", directive: "", holdsHeaders: true },
];

/** First arrival of `kind`, NaN when it never came. */
const firstAt = (t, kind) => t.blocks.find((b) => b.kind === kind)?.at ?? Number.NaN;

/**
 * Bytes on the wire of one turn (and one streamed `/v1/chat/completions` call) whose upstream is slow to
 * answer: when the client gets the headers, `turn.started`, each `: ping`, the first content and the end.
 * Runs on a second edge-chat Worker whose pings come every {@link TIMELINE_PING_INTERVAL_MS} ms.
 * @returns {Promise<{ markdown: string, metrics: Record<string, number> }>}
 */
export async function runTimeline(h) {
  if (!h.timelineOrigin) throw new Error("the harness was started without the timeline Worker");
  const origin = h.timelineOrigin;
  const user = "bench-timeline";
  const [conversationId] = await h.createConversations(user, 1, origin);
  const headers = await h.edgeHeaders(user);
  const rows = [];
  // API.md §2.1: the stream starts no later than this after both messages are stored (default 1,000).
  const metrics = { "timeline.deadlineMs": Number(h.config.vars.STREAM_START_DEADLINE_MS ?? 1000) };
  try {
    for (const delay of D1_DELAYS_MS) {
      await h.setD1Delay(delay, origin);
      for (const [u, upstream] of UPSTREAMS.entries()) {
        const directive = `${upstream.directive} ttft=${SLOW_MS}`;
        const shape = { tokens: ANSWER_TOKENS, ttft: SLOW_MS, itl: 0 };
        const text = prompt(shape).replace("]]", ` ${directive}]]`);
        const turn = await recordTimeline({
          url: `${origin}/v1/conversations/${conversationId}/messages`,
          headers,
          body: JSON.stringify({ content: text }),
        });
        const completion = await recordTimeline({
          url: `${origin}/v1/chat/completions`,
          headers,
          body: JSON.stringify({
            model: h.config.vars.DEFAULT_MODEL ?? "qwen-plus",
            stream: true,
            messages: [{ role: "user", content: text }],
          }),
        });
        for (const [endpoint, t, started, first, last] of [
          ["turn (`POST …/messages`)", turn, "turn.started", "message.delta", "message.completed"],
          ["`/v1/chat/completions` stream", completion, null, "content", "[DONE]"],
        ]) {
          const pings = t.blocks.filter((b) => b.kind === "ping").map((b) => ms(b.at));
          rows.push([
            upstream.label,
            `${delay} ms`,
            endpoint,
            t.status,
            ms(t.headersMs),
            started ? ms(firstAt(t, started)) : "—",
            pings.length ? pings.join(", ") : "none",
            ms(firstAt(t, first)),
            ms(firstAt(t, last)),
            ms(t.endMs),
          ]);
          if (t.error) console.error(`timeline ${upstream.label}, ${endpoint}: ${t.error}`);
          const key = `timeline.${u}.${delay}.${started ? "turn" : "completions"}`;
          metrics[`${key}.headers`] = t.headersMs;
          metrics[`${key}.started`] = started ? firstAt(t, started) : Number.NaN;
          metrics[`${key}.firstPing`] = firstAt(t, "ping");
          metrics[`${key}.ok`] = t.status === 200 && !t.error && Number.isFinite(firstAt(t, last)) ? 1 : 0;
        }
      }
    }
  } finally {
    await h.setD1Delay(0, origin);
  }
  const markdown = section(
    "Timeline of a turn with a slow upstream",
    `One request per row, one at a time, each to a Worker whose \`SSE_PING_INTERVAL_MS\` is ${TIMELINE_PING_INTERVAL_MS} (deployed: 15,000), so pings show within the ${SLOW_MS / 1000} s wait. ` +
      `The stand-in sends ${ANSWER_TOKENS} tokens after ${SLOW_MS / 1000} s, its headers either at once (\`headers_first\`) or with the first token. ` +
      "Every column is ms from sending the request to the arrival of the bytes named; every D1 call waits the given delay.",
    table(
      [
        "upstream",
        "D1 round trip",
        "endpoint",
        "status",
        "headers ms",
        "`turn.started` ms",
        "`: ping`s at ms",
        "first content ms",
        "terminal event ms",
        "end ms",
      ],
      rows,
    ),
  );
  return { markdown, metrics };
}
