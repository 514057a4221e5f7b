import { afterEach, beforeEach, expect, it, type MockInstance, vi } from "vitest";
import { createConversation, eventually, newTag, newUser, type UpstreamRequestBody } from "./helpers/api";
import { dbOf } from "./helpers/shards";
import {
  extendsPrompt,
  prose,
  SUMMARY_MODEL,
  summaryCalls,
  summaryOf,
  TINY,
  TINY_BUDGET,
  turn,
  turnBody,
} from "./helpers/summaries";

// A summary call is reserved against the user's daily budget like every upstream call; when the
// budget cannot hold it, no call is made and the turns go on: a fold then drops what it folds.
// Once the budget holds it again, the summary catches up with what was dropped.

let log: MockInstance<typeof console.log>;
beforeEach(() => {
  log = vi.spyOn(console, "log");
});
afterEach(() => vi.restoreAllMocks());

/** The outcomes of the conversation's summary jobs, as logged (`summary.finished`). */
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

const FACT = "the boat is called Petrel";

it("a budget that cannot hold the summary call skips it and the turns still work; the summary catches up once it can", async () => {
  const gus = newUser("gus");
  const conv = await createConversation(gus, { model: TINY });
  const base = newTag();
  const db = dbOf(gus);
  const used = async () =>
    (await db
      .prepare("SELECT COALESCE(SUM(total_tokens), 0) AS n FROM usage_daily WHERE user_id = ?")
      .bind(gus)
      .first<{ n: number }>())!.n;
  const bodies: UpstreamRequestBody[] = [];
  let i = 0;
  const next = async () => {
    i++;
    const tag = `${base}-${i}`;
    const content =
      i === 1
        ? `${prose("turn 1", 160)} Remember: ${FACT}. [[stand-in tokens=50 tag=${tag} keep]]`
        : `${prose(`turn ${i}`, 240)} [[stand-in tokens=50 tag=${tag}]]`;
    const answer = await turn(gus, conv.id, { content });
    expect(answer.usage.prompt_tokens).toBeLessThanOrEqual(TINY_BUDGET);
    bodies.push(await turnBody(tag));
  };

  // Before each turn, the budget holds that turn's whole reservation (a prompt of at most 2,048
  // tokens and a 256-token reply) and little more: never a summary call besides.
  await next();
  let folded = -1;
  while (folded < 0 || i < folded + 2) {
    await db
      .prepare("UPDATE users SET daily_token_budget = ? WHERE id = ?")
      .bind((await used()) + 2_400, gus)
      .run();
    await next();
    if (folded < 0 && !extendsPrompt(bodies.at(-2)!, bodies.at(-1)!)) folded = i;
    expect(i).toBeLessThan(30);
  }
  await eventually(async () => outcomes(conv.id).length > 0);
  expect(new Set(outcomes(conv.id))).toEqual(new Set(["over_budget"]));
  // No call reached DashScope, nothing was billed for one, and the fold dropped without a summary.
  const tags = bodies.map((_, k) => `${base}-${k + 1}`);
  expect((await Promise.all(tags.map(summaryCalls))).flat()).toEqual([]);
  const records = await db
    .prepare("SELECT COUNT(*) AS n FROM usage_records WHERE user_id = ? AND model = ?")
    .bind(gus, SUMMARY_MODEL)
    .first<{ n: number }>();
  expect(records!.n).toBe(0);
  expect(bodies.some((b) => summaryOf(b) !== undefined)).toBe(false);
  expect(JSON.stringify(bodies.at(-1)!.messages)).not.toContain(FACT);

  // With room again, the next turn asks for the summary of what the fold dropped (or, past 80%,
  // of what the coming fold drops), and within a fold at most a prompt carries it, turn 1's fact
  // with it.
  await db.prepare("UPDATE users SET daily_token_budget = -1 WHERE id = ?").bind(gus).run();
  const before = bodies.length;
  await next();
  await eventually(async () => outcomes(conv.id).includes("summarized"));
  for (let k = 0; k < 4 && !summaryOf(bodies.at(-1)!)?.includes(FACT); k++) await next();
  expect(summaryOf(bodies.at(-1)!)).toContain(FACT);
  expect(bodies.length - before).toBeLessThanOrEqual(5);
});
