import { ms, section, table } from "../lib/format.mjs";
import { sendEdgeTurn } from "../lib/paths.mjs";
import { interleave } from "../lib/rounds.mjs";
import { seedHistory } from "../lib/seed.mjs";
import { summarize } from "../lib/stats.mjs";

const SHAPE = { tokens: 5, ttft: 0, itl: 0 };

/**
 * TTFT of a turn in conversations holding 10, 1,000 and 10,000 stored messages, interleaved.
 * The turn reads a bounded window of history, so 1,000 and 10,000 must cost the same.
 */
export async function runHistory(h, { rounds, warmup, historySizes }) {
  const user = "bench-history";
  const conversations = await h.createConversations(user, historySizes.length);
  for (const [i, count] of historySizes.entries()) {
    const stored = await seedHistory(await h.dbHolding(conversations[i]), {
      userId: user,
      conversationId: conversations[i],
      count,
    });
    if (stored !== count) throw new Error(`seeded ${stored} messages, wanted ${count}`);
  }
  const paths = Object.fromEntries(
    historySizes.map((count, i) => [
      count,
      () =>
        sendEdgeTurn(h, SHAPE, { userId: user, conversationId: conversations[i], label: `history${count}` }),
    ]),
  );
  const r = await interleave({ paths, rounds, warmup });
  const rows = [];
  const metrics = {};
  for (const count of historySizes) {
    const results = r[count];
    const ok = results.filter((x) => x.ok);
    const s = summarize(ok.map((x) => x.ttftMs));
    const ids = new Set(results.map((x) => x.requestId));
    const logs = h.turnLogs.filter((l) => ids.has(l.request_id));
    const included = logs.length ? Math.max(...logs.map((l) => l.history_included)) : Number.NaN;
    rows.push([count.toLocaleString("en"), ms(s.p50), ms(s.p95), included, results.length - ok.length]);
    metrics[`history.${count}.p50`] = s.p50;
    metrics[`history.${count}.errors`] = results.length - ok.length;
  }
  const markdown = section(
    "History scale",
    `${rounds} interleaved rounds (warm-up discarded), ${SHAPE.tokens}-token answers, upstream ttft 0 ms. ` +
      'Messages of about 200 characters written straight into D1 beforehand; "sent upstream" is the most history messages a turn included (from its `turn.finished` log line).',
    table(["stored messages", "TTFT p50 ms", "TTFT p95 ms", "history sent upstream", "errors"], rows),
  );
  return { markdown, metrics };
}
