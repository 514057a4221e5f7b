import { deltaMs, ms, ratio, section, table } from "../lib/format.mjs";
import {
  conversationPool,
  sendDirect,
  sendEdgeTurn,
  sendPassthrough,
  timeToUpstream,
} from "../lib/paths.mjs";
import { interleave } from "../lib/rounds.mjs";
import { median, summarize } from "../lib/stats.mjs";

/** Conversations the TTFT turns rotate over (each turn finds its conversation idle). */
const POOL_SIZE = 8;
/** Short answers: this scenario is about the first token. */
const ANSWER_TOKENS = 20;

/** Upstream timings: ttft=0 shows raw overhead best; 50 ms / 2 ms is a fast real model. */
export const TTFT_SHAPES = [
  { label: "upstream ttft 0 ms, itl 0 ms", tokens: ANSWER_TOKENS, ttft: 0, itl: 0 },
  { label: "upstream ttft 50 ms, itl 2 ms", tokens: ANSWER_TOKENS, ttft: 50, itl: 2 },
];

/**
 * Median over rounds of `a − b` where both succeeded (pairs measured in the same round).
 * @param {Array<{ ok: boolean, ttftMs: number }>} a
 * @param {Array<{ ok: boolean, ttftMs: number }>} b
 */
export function pairedTtftDelta(a, b, field = "ttftMs") {
  const deltas = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++)
    if (a[i].ok && b[i].ok) deltas.push(a[i][field] - b[i][field]);
  return median(deltas);
}

/**
 * Time to first token: direct vs pass-through Worker vs full edge-chat turn, interleaved.
 * @returns {Promise<{ markdown: string, metrics: Record<string, number> }>}
 */
export async function runTtft(h, { rounds, warmup }) {
  const user = "bench-ttft";
  const pool = conversationPool(user, await h.createConversations(user, POOL_SIZE));
  const rows = [];
  const metrics = {};
  for (const [i, shape] of TTFT_SHAPES.entries()) {
    const r = await interleave({
      rounds,
      warmup,
      paths: {
        direct: () => sendDirect(h, shape),
        passthrough: () => sendPassthrough(h, shape),
        edge: () => sendEdgeTurn(h, shape, { ...pool(), label: "ttft" }),
      },
    });
    const s = Object.fromEntries(
      Object.entries(r).map(([k, v]) => [k, summarize(v.filter((x) => x.ok).map((x) => x.ttftMs))]),
    );
    const errors = (k) => r[k].filter((x) => !x.ok).length;
    const toUpstream = (k) =>
      ms(
        median(
          r[k]
            .filter((x) => x.ok)
            .map((x) => timeToUpstream(h, x))
            .filter(Number.isFinite),
        ),
      );
    const overEdgePt = pairedTtftDelta(r.edge, r.passthrough);
    const overPtDirect = pairedTtftDelta(r.passthrough, r.direct);
    const overEdgeDirect = pairedTtftDelta(r.edge, r.direct);
    rows.push(
      [
        shape.label,
        "direct to stand-in",
        ms(s.direct.p50),
        ms(s.direct.p95),
        toUpstream("direct"),
        "—",
        "—",
        "—",
        errors("direct"),
      ],
      [
        shape.label,
        "pass-through Worker",
        ms(s.passthrough.p50),
        ms(s.passthrough.p95),
        toUpstream("passthrough"),
        deltaMs(overPtDirect),
        "—",
        ratio(s.passthrough.p50 / s.direct.p50),
        errors("passthrough"),
      ],
      [
        shape.label,
        "edge-chat turn",
        ms(s.edge.p50),
        ms(s.edge.p95),
        toUpstream("edge"),
        deltaMs(overEdgeDirect),
        deltaMs(overEdgePt),
        `${ratio(s.edge.p50 / s.direct.p50)} / ${ratio(s.edge.p50 / s.passthrough.p50)}`,
        errors("edge"),
      ],
    );
    metrics[`ttft${i}.edgeOverPassthroughP50`] = overEdgePt;
    metrics[`ttft${i}.passthroughOverDirectP50`] = overPtDirect;
    metrics[`ttft${i}.edgeOverDirectP50`] = overEdgeDirect;
    metrics[`ttft${i}.edgeP50`] = s.edge.p50;
    metrics[`ttft${i}.passthroughP50`] = s.passthrough.p50;
    metrics[`ttft${i}.directP50`] = s.direct.p50;
    metrics[`ttft${i}.errors`] = errors("direct") + errors("passthrough") + errors("edge");
  }
  const markdown = section(
    "Time to first token",
    `${rounds} interleaved rounds per upstream timing (${warmup} warm-up rounds discarded), ${ANSWER_TOKENS}-token answers, one request at a time. ` +
      '"To upstream" is request sent → the stand-in has the upstream request (1 ms clock; the rest of the TTFT is spent after the upstream call). ' +
      "Overheads are medians of per-round differences; ratios are of the p50s (edge-chat ratio: vs direct / vs pass-through).",
    table(
      [
        "upstream",
        "path",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "to upstream p50 ms",
        "over direct ms",
        "over pass-through ms",
        "ratio p50",
        "errors",
      ],
      rows,
    ),
  );
  return { markdown, metrics };
}
