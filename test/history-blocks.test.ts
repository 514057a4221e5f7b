import { describe, expect, it } from "vitest";
import {
  call,
  createConversation,
  newTag,
  newUser,
  standInRequests,
  type UpstreamRequestBody,
  type UpstreamRequestMessage,
} from "./helpers/api";
import { dbOf } from "./helpers/shards";
import { WEATHER_TOOL } from "./helpers/tools";

// Issue 17, deliverable 2: history dropped in blocks (HISTORY_FOLD 90/50 of the prompt budget,
// MIN_VERBATIM_TURNS 6, wrangler.toml), so consecutive prompts repeat the previous one byte for
// byte between folds and the stand-in's context cache (PROTOCOL.md §8) hits. Real Worker turns,
// bodies read from the stand-in's request log.

// qwen-tiny-context: 3,072-token window, 2,048 input tokens (vitest.config.ts); not in
// EXPLICIT_CACHE_MODELS, so implicit caching only. With max_tokens 256 the prompt budget is 2,048.
const TINY = "qwen-tiny-context";
const TINY_BUDGET = 2048;
// qwen-plus-window-6k: qwen-plus's prices and explicit markers, 6,144-token window (vitest.config.ts).
const PLUS_6K = "qwen-plus-window-6k";

interface Answer {
  id: string;
  status: string;
  usage: { prompt_tokens: number; completion_tokens: number; cached_tokens: number };
  tool_calls: { id: string }[] | null;
}

/** `chars` characters of prose, unique to `label`. */
const prose = (label: string, chars: number) =>
  `${label}: ${"The ferry leaves at dawn and the harbour wakes slowly. ".repeat(Math.ceil(chars / 55))}`.slice(
    0,
    chars,
  );

/** One non-streamed turn; returns the completed answer. */
async function turn(userId: string, conversationId: string, body: Record<string, unknown>): Promise<Answer> {
  const res = await call(userId, "POST", `/conversations/${conversationId}/messages`, {
    ...body,
    stream: false,
  });
  const json = (await res.json()) as { assistant_message: Answer };
  expect(res.status, JSON.stringify(json)).toBe(200);
  expect(json.assistant_message.status).toBe("completed");
  return json.assistant_message;
}

/** The body the stand-in received for `tag` (one request per tag). */
async function bodyOf(tag: string): Promise<UpstreamRequestBody> {
  const requests = await standInRequests(tag);
  expect(requests).toHaveLength(1);
  return requests[0]!.body;
}

/** Whether `next` starts with every message of `prev`, byte for byte (markers included). */
const extendsPrompt = (prev: UpstreamRequestBody, next: UpstreamRequestBody) =>
  JSON.stringify(next.messages.slice(0, prev.messages.length)) === JSON.stringify(prev.messages);

/** The text of a message (string content, or its text parts joined). */
const textOf = (m: UpstreamRequestMessage) =>
  typeof m.content === "string"
    ? m.content
    : Array.isArray(m.content)
      ? (m.content as { text?: string }[]).map((p) => p.text ?? "").join("")
      : "";

const hasMarker = (m: UpstreamRequestMessage | undefined) =>
  Array.isArray(m?.content) && (m.content as { cache_control?: unknown }[]).some((p) => p.cache_control);

describe("history in blocks", () => {
  it("folds in blocks: between folds each prompt extends the last byte for byte and hits the cache; the window holds and the last 6 turns are verbatim", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, { model: TINY });
    const base = newTag();
    const TURNS = 30;
    const sent: string[] = [];
    const bodies: UpstreamRequestBody[] = [];
    const answers: Answer[] = [];
    for (let i = 1; i <= TURNS; i++) {
      const tag = `${base}-${i}`;
      const content = `${prose(`turn ${i}`, 240)} [[stand-in tokens=50 tag=${tag}]]`;
      sent.push(content);
      answers.push(await turn(alice, conv.id, { content, parameters: { max_tokens: 256 } }));
      bodies.push(await bodyOf(tag));
    }

    const folds = bodies.flatMap((b, i) => (i > 0 && !extendsPrompt(bodies[i - 1]!, b) ? [i] : []));
    // About 135 tokens a turn: a block from 50% to 90% of the budget holds about six turns.
    expect(folds.length).toBeGreaterThanOrEqual(2);
    expect(folds.length).toBeLessThanOrEqual(TURNS / 4);
    for (const [i, body] of bodies.entries()) {
      // The window always wins (the stand-in counts the prompt as DashScope does).
      expect(answers[i]!.usage.prompt_tokens).toBeLessThanOrEqual(TINY_BUDGET);
      // The system prompt stays first; the history after it starts at a user message.
      expect(body.messages[0]!.role).toBe("system");
      expect(body.messages[1]!.role).toBe("user");
      // The last 6 turns (the new one and 5 before) fit here, and are all sent verbatim.
      const users = body.messages.filter((m) => m.role === "user").map(textOf);
      const recent = sent.slice(Math.max(0, i - 5), i + 1);
      expect(users.slice(-recent.length)).toEqual(recent);
    }
    // A fold drops several turns at once, then the block grows again one turn at a time.
    for (const f of folds) {
      const dropped =
        bodies[f - 1]!.messages.filter((m) => m.role === "user").length +
        1 -
        bodies[f]!.messages.filter((m) => m.role === "user").length;
      expect(dropped).toBeGreaterThanOrEqual(3);
    }
    // Every turn after the first fold that is not itself a fold hits the implicit cache.
    const later = answers.map((a, i) => ({ a, i })).filter(({ i }) => i > folds[0]! && !folds.includes(i));
    expect(later.length).toBeGreaterThan(10);
    for (const { a } of later) expect(a.usage.cached_tokens).toBeGreaterThan(0);
    // No model here takes markers.
    expect(bodies.some((b) => b.messages.some(hasMarker))).toBe(false);
  });

  it("a fold never splits a tool exchange", async () => {
    const bob = newUser("bob");
    const conv = await createConversation(bob, { model: TINY, parameters: { tools: [WEATHER_TOOL] } });
    const base = newTag();
    const bodies: UpstreamRequestBody[] = [];
    for (let i = 1; i <= 12; i++) {
      const ask = `${base}-${i}a`;
      const call1 = await turn(bob, conv.id, {
        content: `${prose(`weather ${i}`, 120)} [[stand-in tool_call tokens=20 tag=${ask}]]`,
        parameters: { max_tokens: 256 },
      });
      bodies.push(await bodyOf(ask));
      const answer = `${base}-${i}b`;
      await turn(bob, conv.id, {
        role: "tool",
        tool_call_id: call1.tool_calls![0]!.id,
        content: `${prose(`forecast ${i}`, 320)} [[stand-in tokens=30 tag=${answer}]]`,
        parameters: { max_tokens: 256 },
      });
      bodies.push(await bodyOf(answer));
    }
    const folds = bodies.filter((b, i) => i > 0 && !extendsPrompt(bodies[i - 1]!, b));
    expect(folds.length).toBeGreaterThanOrEqual(2);
    for (const body of bodies) {
      const m = body.messages;
      for (const [i, msg] of m.entries()) {
        if (msg.role === "assistant" && msg.tool_calls?.length) {
          // Every call is answered by the tool messages right after it.
          const results = m.slice(i + 1, i + 1 + msg.tool_calls.length);
          expect(results.map((r) => [r.role, r.tool_call_id])).toEqual(
            msg.tool_calls.map((c) => ["tool", c.id]),
          );
        }
        if (msg.role === "tool") {
          // A result always follows its call (or a result of the same call batch).
          const before = m.slice(0, i).findLast((x) => x.role !== "tool");
          expect(before?.tool_calls?.some((c) => c.id === msg.tool_call_id)).toBe(true);
        }
      }
    }
  });

  it("for a model in EXPLICIT_CACHE_MODELS, the block's anchor carries a marker that stays put; the ledger bills creation once, then hits", async () => {
    const carol = newUser("carol");
    const conv = await createConversation(carol, { model: PLUS_6K });
    const base = newTag();
    const TURNS = 34;
    const bodies: UpstreamRequestBody[] = [];
    const answers: Answer[] = [];
    for (let i = 1; i <= TURNS; i++) {
      const tag = `${base}-${i}`;
      answers.push(
        await turn(carol, conv.id, {
          content: `${prose(`entry ${i}`, 600)} [[stand-in tokens=100 tag=${tag}]]`,
          parameters: { max_tokens: 512 },
        }),
      );
      bodies.push(await bodyOf(tag));
    }
    // Markers aside, consecutive prompts of a block still repeat the previous one.
    const bare = (b: UpstreamRequestBody) => ({
      ...b,
      messages: b.messages.map((m) => ({ ...m, content: textOf(m) })),
    });
    const folds = bodies.flatMap((b, i) =>
      i > 0 && !extendsPrompt(bare(bodies[i - 1]!), bare(b)) ? [i] : [],
    );
    expect(folds.length).toBeGreaterThanOrEqual(1);
    const first = folds[0]!;
    const block = bodies.slice(first, folds[1] ?? TURNS);
    expect(block.length).toBeGreaterThanOrEqual(4);
    // The fold's turn marks the end of its history (the anchor); every later prompt of the block
    // keeps that marker on the same message, and marks the end of its own history too.
    const anchor = bodies[first]!.messages.length - 2;
    for (const body of block) {
      expect(hasMarker(body.messages[anchor])).toBe(true);
      expect(hasMarker(body.messages.at(-2))).toBe(true);
      expect(body.messages.filter(hasMarker).length).toBeLessThanOrEqual(2);
      expect(JSON.stringify(body.messages.slice(0, anchor + 1))).toBe(
        JSON.stringify(bodies[first]!.messages.slice(0, anchor + 1)),
      );
    }

    // The ledger's cost, from the prices of qwen-plus (USD 0.4 input, 1.2 output per 1M; explicit
    // hits 10%, creation 125%), tells the tokens written to the cache: cost·1e6 = (p − c − w)·0.4 +
    // c·0.04 + w·0.5 + out·1.2, so w = (cost·1e6 − (p − c)·0.4 − c·0.04 − out·1.2) / 0.1.
    const created = async (a: Answer) => {
      const row = await dbOf(carol)
        .prepare("SELECT cost_usd FROM usage_records WHERE id = ?")
        .bind(a.id)
        .first<{
          cost_usd: number;
        }>();
      const { prompt_tokens: p, cached_tokens: c, completion_tokens: out } = a.usage;
      return Math.round((row!.cost_usd * 1e6 - (p - c) * 0.4 - c * 0.04 - out * 1.2) / 0.1);
    };
    // The fold creates its whole prefix (nothing of it was cached); each later turn hits the last
    // turn's prefix and creates only what it added.
    const foldAnswer = answers[first]!;
    expect(foldAnswer.usage.cached_tokens).toBe(0);
    expect(await created(foldAnswer)).toBeGreaterThan(1024);
    for (const a of answers.slice(first + 1, first + block.length)) {
      expect(a.usage.cached_tokens).toBeGreaterThan(1024);
      const w = await created(a);
      expect(w).toBeGreaterThan(0);
      expect(w).toBeLessThan(a.usage.prompt_tokens - a.usage.cached_tokens);
    }
  });
});
