import { expect, it } from "vitest";
import { createConversation, newTag, newUser, type UpstreamRequestBody } from "./helpers/api";
import {
  type Answer,
  extendsPrompt,
  prose,
  summaryCalls,
  summaryOf,
  TINY,
  TINY_BUDGET,
  textOf,
  turn,
  turnBody,
} from "./helpers/summaries";

// Issue 17, deliverable 1: once history folds, the prompt is the system prompt, the running
// summary of what was folded, and the newest turns verbatim; each summary extends the previous
// one, so a fact from turn 1 reaches prompts many folds later. The stand-in cannot summarise: its
// digest model (SUMMARY_MODEL here) answers with the lines of its input that carry `keep`
// (tools/dashscope-stand-in/scenarios/digest.mjs), which shows what each summary call was given.

const FACT = "the vault code is 7-4-1-9";

it("after a fold the prompt carries the system prompt, the summary and the recent turns verbatim; turn 1's fact survives fold after fold", async () => {
  const dora = newUser("dora");
  const conv = await createConversation(dora, { model: TINY });
  const base = newTag();
  const TURNS = 44;
  const sent: string[] = [];
  const bodies: UpstreamRequestBody[] = [];
  const answers: Answer[] = [];
  for (let i = 1; i <= TURNS; i++) {
    const tag = `${base}-${i}`;
    const content =
      i === 1
        ? `${prose("turn 1", 160)} Remember: ${FACT}. [[stand-in tokens=50 tag=${tag} keep]]`
        : `${prose(`turn ${i}`, 240)} [[stand-in tokens=50 tag=${tag}]]`;
    sent.push(content);
    answers.push(await turn(dora, conv.id, { content }));
    bodies.push(await turnBody(tag));
  }

  const folds = bodies.flatMap((b, i) => (i > 0 && !extendsPrompt(bodies[i - 1]!, b) ? [i] : []));
  expect(folds.length).toBeGreaterThanOrEqual(3);
  // Turn 1 itself is dropped at the first fold; from then on only a summary can carry its fact.
  const dropped = bodies.findIndex((b) => !b.messages.some((m) => textOf(m) === sent[0]));
  expect(dropped).toBe(folds[0]);

  // The summary call that covered turn 1 was given turn 1's text.
  const covering = (await Promise.all(sent.map((_, i) => summaryCalls(`${base}-${i + 1}`)))).flat();
  expect(covering.length).toBeGreaterThanOrEqual(2);
  const inputs = covering.map((c) => JSON.stringify(c.body.messages));
  expect(inputs.some((text) => text.includes(FACT) && text.includes(`tag=${base}-1 keep`))).toBe(true);
  // Later summary calls extend a summary that carries the fact (not turn 1's message itself).
  expect(
    inputs.filter((text) => text.includes(FACT) && !text.includes(`tag=${base}-1 `)).length,
  ).toBeGreaterThan(0);

  for (const [i, body] of bodies.entries()) {
    // The window always wins.
    expect(answers[i]!.usage.prompt_tokens).toBeLessThanOrEqual(TINY_BUDGET);
    expect(body.messages[0]!.role).toBe("system");
    const summary = summaryOf(body);
    if (i >= dropped) {
      // System prompt and summary (one message), then history from a user message; the summary
      // carries the fact.
      expect(summary, `turn ${i + 1}`).toBeDefined();
      expect(summary).toContain(FACT);
      expect(body.messages[1]!.role).toBe("user");
    } else expect(summary).toBeUndefined();
    // The last 6 turns (the new one and 5 before) are verbatim.
    const users = body.messages.filter((m) => m.role === "user").map(textOf);
    const recent = sent.slice(Math.max(0, i - 5), i + 1);
    expect(users.slice(-recent.length)).toEqual(recent);
  }
  // Between folds the summary does not move: prompts of a block share their prefix byte for byte.
  const later = answers.map((a, i) => ({ a, i })).filter(({ i }) => i > folds[0]! && !folds.includes(i));
  expect(later.length).toBeGreaterThan(10);
  for (const { a } of later) expect(a.usage.cached_tokens).toBeGreaterThan(0);
  // Turn 44 is many folds after turn 1 and still carries its fact.
  expect(folds.filter((f) => f > dropped).length).toBeGreaterThanOrEqual(2);
  expect(JSON.stringify(bodies.at(-1)!.messages)).toContain(FACT);
});
