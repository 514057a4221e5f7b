import { deltaMs, ms, ratio, section, table } from "../lib/format.mjs";
import { conversationPool, sendEdgeTurn, sendPassthrough, timeToUpstream } from "../lib/paths.mjs";
import { interleave } from "../lib/rounds.mjs";
import { median, summarize } from "../lib/stats.mjs";
import { pairedTtftDelta } from "./ttft.mjs";

/**
 * D1 round trips the scenario stands for, in ms: same region (0), one continent (40), Singapore to a
 * primary in Western Europe (≈ 80; see issue 12), and the far side of the world (160).
 */
export const D1_DELAYS_MS = [0, 40, 80, 160];
/** Upstream time to first token: 0 shows the whole wait before it; 200 ms is a typical model's first token. */
export const UPSTREAM_TTFTS_MS = [0, 200];
const POOL_SIZE = 8;
const ANSWER_TOKENS = 20;

/**
 * Time to first token with a fixed delay added to every D1 call of edge-chat (Worker and Durable
 * Object alike; bench/workers/edge-chat-entry.mjs), interleaved with the pass-through Worker, which
 * makes no D1 call, so its TTFT is the floor at every delay.
 * @returns {Promise<{ markdown: string, metrics: Record<string, number> }>}
 */
export async function runTtftD1(h, { rounds, warmup }) {
  const measured = Math.max(5, Math.round(rounds / 2));
  const user = "bench-ttft-d1";
  const pool = conversationPool(user, await h.createConversations(user, POOL_SIZE));
  const rows = [];
  const metrics = {};
  try {
    for (const ttft of UPSTREAM_TTFTS_MS) {
      const shape = { tokens: ANSWER_TOKENS, ttft, itl: 0 };
      for (const delay of D1_DELAYS_MS) {
        await h.setD1Delay(delay);
        const r = await interleave({
          rounds: measured,
          warmup,
          paths: {
            passthrough: () => sendPassthrough(h, shape),
            edge: () => sendEdgeTurn(h, shape, { ...pool(), label: `ttftd1-${delay}` }),
          },
        });
        const s = {
          passthrough: summarize(r.passthrough.filter((x) => x.ok).map((x) => x.ttftMs)),
          edge: summarize(r.edge.filter((x) => x.ok).map((x) => x.ttftMs)),
        };
        const toUpstream = median(
          r.edge
            .filter((x) => x.ok)
            .map((x) => timeToUpstream(h, x))
            .filter(Number.isFinite),
        );
        const over = pairedTtftDelta(r.edge, r.passthrough);
        const errors = r.edge.filter((x) => !x.ok).length + r.passthrough.filter((x) => !x.ok).length;
        rows.push([
          `${ttft} ms`,
          `${delay} ms`,
          ms(s.passthrough.p50),
          ms(s.passthrough.p95),
          ms(s.edge.p50),
          ms(s.edge.p95),
          ms(toUpstream),
          deltaMs(over),
          deltaMs(over - delay),
          ratio(s.edge.p50 / s.passthrough.p50),
          errors,
        ]);
        metrics[`ttftd1.${ttft}.${delay}.over`] = over;
        metrics[`ttftd1.${ttft}.${delay}.edgeP50`] = s.edge.p50;
        metrics[`ttftd1.${ttft}.${delay}.passthroughP50`] = s.passthrough.p50;
        metrics[`ttftd1.${ttft}.${delay}.toUpstream`] = toUpstream;
        metrics[`ttftd1.${ttft}.${delay}.errors`] = errors;
      }
    }
  } finally {
    await h.setD1Delay(0);
  }
  const markdown = section(
    "Time to first token over D1 round trips",
    `Every D1 call of edge-chat (its Worker and its Durable Object) waits the given delay first, standing for the round trip to a far primary; the pass-through Worker makes no D1 call. ` +
      `${measured} interleaved rounds per row (${warmup} warm-up rounds discarded), ${ANSWER_TOKENS}-token answers, one request at a time. ` +
      '"Over pass-through" is the median of per-round differences; "minus one D1 trip" subtracts the delay from it; the ratio is of the p50s. ' +
      '"To upstream" (edge-chat): request sent → the stand-in has the upstream call.',
    table(
      [
        "upstream ttft",
        "D1 round trip",
        "pass-through p50 ms",
        "pass-through p95 ms",
        "edge-chat p50 ms",
        "edge-chat p95 ms",
        "edge-chat to upstream p50 ms",
        "over pass-through ms",
        "minus one D1 trip ms",
        "ratio p50",
        "errors",
      ],
      rows,
    ),
  );
  return { markdown, metrics };
}
