import { expect, it } from "vitest";
import { createConversation, newTag, newUser, type UpstreamRequestBody } from "./helpers/api";
import { prose, summaryCalls, summaryOf, TINY, textOf, turn, turnBody } from "./helpers/summaries";
import { WEATHER_TOOL } from "./helpers/tools";

// A fold never splits a tool exchange, with running summaries on too: a prompt sends an assistant
// message with tool calls only with all its results right after it, and a summary call is given
// a call and its results together (the call's text in the transcript, then each result).

it("with summaries, neither a fold nor a summary call splits a tool exchange", async () => {
  const ivy = newUser("ivy");
  const conv = await createConversation(ivy, { model: TINY, parameters: { tools: [WEATHER_TOOL] } });
  const base = newTag();
  const bodies: UpstreamRequestBody[] = [];
  const tags: string[] = [];
  for (let i = 1; i <= 14; i++) {
    const ask = `${base}-${i}a`;
    const called = await turn(ivy, conv.id, {
      content: `${prose(`weather ${i}`, 120)} [[stand-in tool_call tokens=20 tag=${ask}]]`,
    });
    bodies.push(await turnBody(ask));
    const answer = `${base}-${i}b`;
    await turn(ivy, conv.id, {
      role: "tool",
      tool_call_id: called.tool_calls![0]!.id,
      content: `${prose(`forecast ${i}`, 320)} [[stand-in tokens=30 tag=${answer}]]`,
    });
    bodies.push(await turnBody(answer));
    tags.push(ask, answer);
  }
  // Summaries were made and carried.
  expect(bodies.some((b) => summaryOf(b) !== undefined)).toBe(true);
  for (const body of bodies) {
    const m = body.messages;
    for (const [i, msg] of m.entries()) {
      if (msg.role === "assistant" && msg.tool_calls?.length) {
        const results = m.slice(i + 1, i + 1 + msg.tool_calls.length);
        expect(results.map((r) => [r.role, r.tool_call_id])).toEqual(
          msg.tool_calls.map((c) => ["tool", c.id]),
        );
      }
      if (msg.role === "tool") {
        const before = m.slice(0, i).findLast((x) => x.role !== "tool");
        expect(before?.tool_calls?.some((c) => c.id === msg.tool_call_id)).toBe(true);
      }
    }
  }
  // Each summary call's transcript: every call is followed by its result, every result follows its call.
  const calls = [
    ...new Map((await Promise.all(tags.map(summaryCalls))).flat().map((c) => [c.seq, c])).values(),
  ];
  expect(calls.length).toBeGreaterThan(0);
  for (const call of calls) {
    const lines = textOf(call.body.messages.at(-1)).split("\n\n");
    for (const [i, line] of lines.entries()) {
      if (line.includes("[called get_weather(")) expect(lines[i + 1]).toMatch(/^Tool result: forecast \d+:/);
      if (line.startsWith("Tool result:")) expect(lines[i - 1]).toContain("[called get_weather(");
    }
    expect(lines.some((l) => l.startsWith("Tool result:"))).toBe(true);
  }
});
