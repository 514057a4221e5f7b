import { expect, it } from "vitest";
import { createConversation, newTag, newUser, type UpstreamRequestBody } from "./helpers/api";
import { type Answer, prose, summaryOf, TINY, turn, turnBody } from "./helpers/summaries";

// Summaries are per branch: a summary is named by the newest message it covers, so only a path
// through that message uses it. An edit of an early message starts a path of its own, which
// folds into its own summaries; going back to the first branch finds its summary again.

const SHARED = "the meeting point is Pier 9";
const MAIN_ONLY = "the main branch budget is 40 euros";
const EDIT_ONLY = "the edited branch budget is 75 euros";

it("an edit of an early message never uses another branch's summary", async () => {
  const hal = newUser("hal");
  const conv = await createConversation(hal, { model: TINY });
  const base = newTag();
  let n = 0;
  /** Sends one turn (after `parentId` when given); returns its answer and prompt. */
  const send = async (text: string, keep: boolean, parentId?: string) => {
    const tag = `${base}-${++n}`;
    const content = `${text} [[stand-in tokens=50 tag=${tag}${keep ? " keep" : ""}]]`;
    const answer: Answer = await turn(hal, conv.id, {
      content,
      ...(parentId ? { parent_id: parentId } : {}),
    });
    return { answer, body: await turnBody(tag) };
  };
  /** Turns after `parentId` until a prompt carries a summary; returns the prompts and the last answer. */
  const untilSummary = async (first: { answer: Answer; body: UpstreamRequestBody }) => {
    const bodies = [first.body];
    let last = first.answer;
    while (summaryOf(bodies.at(-1)!) === undefined) {
      const next = await send(prose(`turn ${n + 1}`, 240), false);
      bodies.push(next.body);
      last = next.answer;
      expect(bodies.length).toBeLessThan(30);
    }
    return { bodies, last };
  };

  const first = await send(`${prose("turn 1", 160)} Note: ${SHARED}.`, true);
  const second = await send(`${prose("turn 2", 160)} Note: ${MAIN_ONLY}.`, true);
  const main = await untilSummary(second);
  expect(summaryOf(main.bodies.at(-1)!)).toContain(SHARED);
  expect(summaryOf(main.bodies.at(-1)!)).toContain(MAIN_ONLY);

  // The edit of turn 2 follows turn 1's answer: a new path without anything after it.
  const edited = await send(`${prose("turn 2 edited", 160)} Note: ${EDIT_ONLY}.`, true, first.answer.id);
  expect(summaryOf(edited.body)).toBeUndefined();
  const branch = await untilSummary(edited);
  for (const body of branch.bodies) expect(JSON.stringify(body.messages)).not.toContain(MAIN_ONLY);
  expect(summaryOf(branch.bodies.at(-1)!)).toContain(SHARED);
  expect(summaryOf(branch.bodies.at(-1)!)).toContain(EDIT_ONLY);

  // Back on the first branch (after its last answer): its own summary again.
  const back = await send(prose("back on main", 240), false, main.last.id);
  expect(summaryOf(back.body)).toContain(MAIN_ONLY);
  expect(JSON.stringify(back.body.messages)).not.toContain(EDIT_ONLY);
});
