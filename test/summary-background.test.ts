import { expect, it } from "vitest";
import {
  createConversation,
  eventually,
  newTag,
  newUser,
  type StandInRequest,
  standInRequests,
} from "./helpers/api";
import type { ReservationRow, UsageRecordRow } from "./helpers/db-rows";
import { dbOf } from "./helpers/shards";
import { prose, SUMMARY_MODEL, summaryCalls, TINY, TINY_BUDGET, turn } from "./helpers/summaries";

// The running summary is made after the turn whose prompt passes 80% of the budget, in the
// background: the answer is returned without waiting for it, and later turns are served while it
// runs. Its call is reserved and settled on the user's shard like any upstream call.
//
// Every turn here carries the same tag, so the summary call (which quotes the turns, directives
// and all) carries it too. Turn 1's `ttft=2000` reaches the summary call the same way (the stand-in
// merges the directives of the one user message the call sends, later keys winning, and no later
// turn sets `ttft`): the call takes two seconds, the turns none.

it("the summary is made after the turn that passes the threshold, without the answer waiting for it; its call is in the user's ledger", async () => {
  const fay = newUser("fay");
  const conv = await createConversation(fay, { model: TINY });
  const tag = newTag();
  const ended: number[] = [];
  const prompts: number[] = [];
  let during: StandInRequest | null = null;
  let turns = 0;
  for (let i = 1; i <= 20 && during === null; i++) {
    const content = `${prose(`turn ${i}`, 240)} [[stand-in tokens=50 tag=${tag}${i === 1 ? " ttft=2000" : ""}]]`;
    prompts.push((await turn(fay, conv.id, { content })).usage.prompt_tokens);
    turns = i;
    const [call] = await summaryCalls(tag);
    // The summary call is still in flight while a turn's answer has come back.
    if (call && call.ended_at === null) during = call;
    const own = (await standInRequests(tag)).filter((r) => r.model !== SUMMARY_MODEL);
    ended.push(own.at(-1)!.ended_at!);
  }
  expect(during, "a turn answered while the summary call ran").not.toBeNull();
  // It started after the answer of the turn that asked for it had ended, not before or during.
  const asking = ended.filter((t) => t <= during!.started_at).length;
  expect(asking).toBeGreaterThan(0);
  expect(during!.started_at).toBeGreaterThanOrEqual(ended[asking - 1]!);
  // That turn's prompt was past 80% of the budget (no fold yet: under 90%), the one before not.
  expect(prompts[asking - 1]!).toBeGreaterThan(0.75 * TINY_BUDGET);
  expect(prompts[asking - 2]!).toBeLessThan(0.85 * TINY_BUDGET);
  // Only one: the turns it ran beside did not start a second.
  expect(await summaryCalls(tag)).toHaveLength(1);
  expect(turns).toBeGreaterThan(5);

  // Once it is done: one usage record on the user's shard, with the conversation's id, the summary
  // model and the stand-in's usage; no reservation left.
  const done = await eventually(async () => {
    const [call] = await summaryCalls(tag);
    return call?.ended_at != null ? call : null;
  });
  const record = await eventually(
    async () =>
      (
        await dbOf(fay)
          .prepare("SELECT * FROM usage_records WHERE user_id = ? AND model = ?")
          .bind(fay, SUMMARY_MODEL)
          .all<UsageRecordRow>()
      ).results[0],
  );
  expect(record).toMatchObject({ conversation_id: conv.id, status: "completed", estimated: 0 });
  expect(record.prompt_tokens).toBeGreaterThan(300);
  expect(record.completion_tokens).toBeGreaterThan(0);
  // Priced as qwen-flash (the digest model's family): 0.05 in, 0.40 out per 1M tokens.
  expect(record.cost_usd).toBeCloseTo(
    (record.prompt_tokens * 0.05 + record.completion_tokens * 0.4) / 1e6,
    9,
  );
  expect(done.body.max_tokens).toBe(768);
  const reservations = await dbOf(fay)
    .prepare("SELECT * FROM quota_reservations WHERE user_id = ?")
    .bind(fay)
    .all<ReservationRow>();
  expect(reservations.results).toEqual([]);
});
