import { ms, num, section, table } from "../lib/format.mjs";
import { sendEdgeTurn, sendPassthrough, timeToUpstream } from "../lib/paths.mjs";
import { rssMiB, sampleRss } from "../lib/proc.mjs";
import { summarize } from "../lib/stats.mjs";

/** Each stream lasts about a second (100 tokens 10 ms apart after 50 ms), so every turn of a wave overlaps. */
const SHAPE = { tokens: 100, ttft: 50, itl: 10 };
const RSS_SAMPLE_INTERVAL_MS = 20;
/** Pause after a wave before reading RSS again, so finished turns' background work (persisting) is done. */
const SETTLE_MS = 1500;

const TURN_KINDS = ["1st turn", "2nd turn", "3rd turn"];

const sleep = (t) => new Promise((resolve) => setTimeout(resolve, t));

/** Fires `n` requests at once and waits for all of them, tracking workerd's peak RSS meanwhile. */
async function wave(h, n, send) {
  const before = rssMiB(h.workerdPid);
  const sampler = sampleRss(h.workerdPid, RSS_SAMPLE_INTERVAL_MS);
  const results = await Promise.all(Array.from({ length: n }, (_, i) => send(i)));
  const peak = sampler.stop();
  await sleep(SETTLE_MS);
  const after = rssMiB(h.workerdPid);
  const ok = results.filter((r) => r.ok && r.tokens === SHAPE.tokens);
  const ttft = summarize(ok.map((r) => r.ttftMs));
  const toUpstream = summarize(ok.map((r) => timeToUpstream(h, r)).filter(Number.isFinite));
  return {
    n,
    errors: n - ok.length,
    firstError: results.find((r) => !r.ok)?.error,
    ttft,
    toUpstream,
    before,
    peak,
    after,
  };
}

/**
 * 50 and 200 simultaneous streaming turns, each in its own conversation: errors, TTFT, workerd memory.
 * Each size is sent three times to the same conversations (1st, 2nd, 3rd turn): the 1st turn creates each
 * Durable Object, and RSS after the 3rd equal to after the 2nd means nothing accumulates per turn.
 * The pass-through Worker gets the largest wave too, as the floor.
 */
export async function runConcurrency(h, { waves }) {
  const rows = [];
  const metrics = {};
  const largest = Math.max(...waves);
  for (const [i, n] of waves.entries()) {
    const user = `bench-concurrency-${i}`;
    const conversations = await h.createConversations(user, n);
    // The first turn of a conversation creates its Durable Object and storage; later turns find them in place.
    // The third wave repeats the second on the same conversations: RSS after it shows whether anything accumulates.
    for (const [t, kind] of TURN_KINDS.entries()) {
      const w = await wave(h, n, (k) =>
        sendEdgeTurn(h, SHAPE, { userId: user, conversationId: conversations[k], label: `conc${n}` }),
      );
      rows.push([
        `edge-chat, ${kind}`,
        n,
        w.errors,
        ms(w.ttft.p50),
        ms(w.ttft.p95),
        ms(w.toUpstream.p50),
        ms(w.toUpstream.p95),
        num(w.before),
        num(w.peak),
        num(w.after),
      ]);
      if (w.firstError) console.error(`concurrency ${n} (${kind}): first error: ${w.firstError}`);
      metrics[`conc.${i}.${t}.errors`] = w.errors;
      metrics[`conc.${i}.${t}.after`] = w.after;
      metrics[`conc.${i}.${t}.ttftP50`] = w.ttft.p50;
    }
    metrics[`conc.${i}.n`] = n;
  }
  const pt = await wave(h, largest, () => sendPassthrough(h, SHAPE));
  rows.push([
    "pass-through Worker",
    largest,
    pt.errors,
    ms(pt.ttft.p50),
    ms(pt.ttft.p95),
    ms(pt.toUpstream.p50),
    ms(pt.toUpstream.p95),
    num(pt.before),
    num(pt.peak),
    num(pt.after),
  ]);
  const markdown = section(
    "Concurrency",
    `Simultaneous streaming turns, each in its own conversation; upstream ttft ${SHAPE.ttft} ms, ${SHAPE.tokens} tokens ${SHAPE.itl} ms apart. ` +
      '"To upstream": request sent → the stand-in has the upstream call. Errors: non-200, `message.failed`, or a missing token. RSS of the whole workerd process (both Workers, local D1 and Durable Objects included), ' +
      `read before the wave, at its peak (sampled every ${RSS_SAMPLE_INTERVAL_MS} ms), and ${SETTLE_MS / 1000} s after it.`,
    table(
      [
        "path",
        "concurrent",
        "errors",
        "TTFT p50 ms",
        "TTFT p95 ms",
        "to upstream p50 ms",
        "to upstream p95 ms",
        "RSS before MiB",
        "RSS peak MiB",
        "RSS after MiB",
      ],
      rows,
    ),
  );
  return { markdown, metrics };
}
