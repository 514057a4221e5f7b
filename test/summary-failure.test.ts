import { afterEach, beforeEach, expect, it, type MockInstance, vi } from "vitest";
import { createConversation, eventually, newTag, newUser, type UpstreamRequestBody } from "./helpers/api";
import type { ReservationRow } from "./helpers/db-rows";
import { dbOf } from "./helpers/shards";
import { extendsPrompt, prose, SUMMARY_MODEL, summaryOf, TINY, turn, turnBody } from "./helpers/summaries";

// A summary call that fails leaves the previous summary: the folds go on carrying it. The failure
// is provoked through the call's own text: it quotes the folded turns, stand-in directives
// included, and `thinking` makes the stand-in refuse a non-streamed call (PROTOCOL.md §2.6) while
// the turns themselves (streamed upstream) just think.

let log: MockInstance<typeof console.log>;
beforeEach(() => {
  log = vi.spyOn(console, "log");
});
afterEach(() => vi.restoreAllMocks());

const outcomes = (conversationId: string) =>
  log.mock.calls
    .map((args) => {
      try {
        return JSON.parse(String(args[0])) as Record<string, unknown>;
      } catch {
        return null;
      }
    })
    .filter((l) => l?.event === "summary.finished" && l.conversation_id === conversationId)
    .map((l) => String(l!.outcome));

const FACT = "the locker number is 318";

it("a failed summary call leaves the previous summary, which the next folds carry", async () => {
  const joy = newUser("joy");
  const conv = await createConversation(joy, { model: TINY });
  const base = newTag();
  const bodies: UpstreamRequestBody[] = [];
  let failing = false;
  const next = async (i: number) => {
    const tag = `${base}-${i}`;
    const content =
      i === 1
        ? `${prose("turn 1", 160)} Remember: ${FACT}. [[stand-in tokens=50 tag=${tag} keep]]`
        : `${prose(`turn ${i}`, 240)} [[stand-in tokens=50 tag=${tag}${failing ? " thinking reasoning=2" : ""}]]`;
    await turn(joy, conv.id, { content });
    bodies.push(await turnBody(tag));
  };
  let i = 0;
  // Until a prompt carries a summary; from then on every turn's text makes a summary call fail.
  while (summaryOf(bodies.at(-1) ?? { model: "", messages: [] }) === undefined) {
    await next(++i);
    expect(i).toBeLessThan(30);
  }
  const first = summaryOf(bodies.at(-1)!)!;
  expect(first).toContain(FACT);
  failing = true;
  const since = bodies.length;
  let folds = 0;
  while (folds < 3) {
    await next(++i);
    if (!extendsPrompt(bodies.at(-2)!, bodies.at(-1)!)) folds++;
    expect(i).toBeLessThan(70);
  }
  await eventually(async () => outcomes(conv.id).includes("failed"));
  // Every later prompt carries the summary that was there: the failures changed nothing.
  for (const body of bodies.slice(since)) expect(summaryOf(body)).toBe(first);
  // A failed call bills nothing and, once the jobs in flight are done, holds nothing.
  await eventually(
    async () =>
      (
        await dbOf(joy)
          .prepare("SELECT * FROM quota_reservations WHERE user_id = ?")
          .bind(joy)
          .all<ReservationRow>()
      ).results.length === 0,
  );
  const records = await dbOf(joy)
    .prepare("SELECT COUNT(*) AS n FROM usage_records WHERE user_id = ? AND model = ?")
    .bind(joy, SUMMARY_MODEL)
    .first<{ n: number }>();
  expect(records!.n).toBe(outcomes(conv.id).filter((o) => o === "summarized").length);
});
