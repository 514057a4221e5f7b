import { deltaMs, ms, num, ratio, section, table } from "../lib/format.mjs";
import { conversationPool, sendDirect, sendEdgeTurn, sendPassthrough } from "../lib/paths.mjs";
import { interleave } from "../lib/rounds.mjs";
import { median, summarize } from "../lib/stats.mjs";
import { pairedTtftDelta } from "./ttft.mjs";

const POOL_SIZE = 4;
export const LONG_ANSWER_TOKENS = 1000;

/**
 * Token flow of a delivered answer in tokens per second: deltas after the first, over the time from
 * the first to the last. A result that lost tokens counts as an error, not as a fast answer.
 */
const tokensPerSecond = (r) => ((r.tokens - 1) * 1000) / r.flowMs;

/**
 * Whole turn with a 1,000-token answer: total time and token flow through each path, interleaved.
 * `itl 0` is the pipeline's capacity (the stand-in writes as fast as the socket takes it); `itl 1`
 * paces the answer at up to 1,000 tokens/s, about ten times a fast real model.
 */
export async function runWholeTurn(h, { longRounds, warmup, quick }) {
  const user = "bench-whole-turn";
  const pool = conversationPool(user, await h.createConversations(user, POOL_SIZE));
  const shapes = [{ label: "itl 0 ms (capacity)", tokens: LONG_ANSWER_TOKENS, ttft: 0, itl: 0 }];
  if (!quick) shapes.push({ label: "itl 1 ms (paced)", tokens: LONG_ANSWER_TOKENS, ttft: 0, itl: 1 });
  const rows = [];
  const metrics = {};
  for (const [i, shape] of shapes.entries()) {
    const r = await interleave({
      rounds: longRounds,
      warmup: Math.min(warmup, 2),
      paths: {
        direct: () => sendDirect(h, shape),
        passthrough: () => sendPassthrough(h, shape),
        edge: () => sendEdgeTurn(h, shape, { ...pool(), label: "whole" }),
      },
    });
    // A complete answer has every token; anything short is an error.
    for (const list of Object.values(r))
      for (const x of list)
        if (x.ok && x.tokens !== LONG_ANSWER_TOKENS)
          Object.assign(x, { ok: false, error: `${x.tokens} tokens` });
    const good = (k) => r[k].filter((x) => x.ok);
    const total = (k) => summarize(good(k).map((x) => x.totalMs));
    const flow = (k) => median(good(k).map(tokensPerSecond));
    const errors = (k) => r[k].length - good(k).length;
    const flowRatio = flow("edge") / flow("passthrough");
    rows.push(
      [
        shape.label,
        "direct to stand-in",
        ms(total("direct").p50),
        ms(total("direct").p95),
        "—",
        num(flow("direct"), 0),
        "—",
        errors("direct"),
      ],
      [
        shape.label,
        "pass-through Worker",
        ms(total("passthrough").p50),
        ms(total("passthrough").p95),
        "—",
        num(flow("passthrough"), 0),
        ratio(flow("passthrough") / flow("direct")),
        errors("passthrough"),
      ],
      [
        shape.label,
        "edge-chat turn",
        ms(total("edge").p50),
        ms(total("edge").p95),
        deltaMs(pairedTtftDelta(r.edge, r.passthrough, "totalMs")),
        num(flow("edge"), 0),
        ratio(flowRatio),
        errors("edge"),
      ],
    );
    metrics[`whole${i}.flowRatio`] = flowRatio;
    metrics[`whole${i}.overheadP50`] = pairedTtftDelta(r.edge, r.passthrough, "totalMs");
    metrics[`whole${i}.errors`] = errors("direct") + errors("passthrough") + errors("edge");
  }
  const markdown = section(
    `Whole turn, ${LONG_ANSWER_TOKENS.toLocaleString("en")}-token answer`,
    `${longRounds} interleaved rounds per pacing (warm-up discarded). Whole turn = request sent → response ended (edge-chat: after \`message.completed\`, i.e. after the answer is stored). ` +
      "Token flow = content deltas per second between the first and the last; its ratio is to the row above (edge-chat: to the pass-through Worker).",
    table(
      [
        "upstream",
        "path",
        "whole turn p50 ms",
        "p95 ms",
        "over pass-through ms",
        "tokens/s p50",
        "flow ratio",
        "errors",
      ],
      rows,
    ),
  );
  return { markdown, metrics };
}
