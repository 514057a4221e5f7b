import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { ReplyLimit } from "../src/chat/reply-limit";
import { grantedReply, MIN_REPLY_TOKENS, replyBounds, reservationAsk } from "../src/chat/usage";
import { loadConfig } from "../src/config";
import { reserveQuota, utcDay } from "../src/store/usage";
import { dbOf } from "./helpers/shards";

const config = loadConfig(env);

describe("replyBounds", () => {
  it("bounds an answer without max_tokens by the model's maximum output, the default for an unknown model", () => {
    expect(replyBounds({}, "qwen-plus", config)).toEqual({ answer: 32_768, reasoning: 0 });
    expect(replyBounds({}, "qwen-plus-2025-07-28", config)).toEqual({ answer: 32_768, reasoning: 0 });
    expect(replyBounds({}, "qwen-max", config)).toEqual({ answer: 8_192, reasoning: 0 });
    expect(replyBounds({}, "qwen-turbo", config)).toEqual({ answer: 65_536, reasoning: 0 });
    expect(replyBounds({ max_tokens: 100 }, "qwen-plus", config)).toEqual({ answer: 100, reasoning: 0 });
  });

  it("adds the chain of thought whenever the model thinks", () => {
    expect(replyBounds({ enable_thinking: true }, "qwen-plus", config).reasoning).toBe(81_920);
    expect(replyBounds({ enable_thinking: true, thinking_budget: 500 }, "qwen-plus", config).reasoning).toBe(
      500,
    );
    // Thinking by default, and always.
    expect(replyBounds({}, "qwen3-32b", config).reasoning).toBe(81_920);
    expect(replyBounds({ enable_thinking: false }, "qwq-plus", config).reasoning).toBe(81_920);
    expect(replyBounds({ enable_thinking: false }, "qwen3-32b", config).reasoning).toBe(0);
  });

  it("takes configured tables over the built-in ones", () => {
    const configured = {
      ...config,
      modelMaxOutputTokens: { "qwen-plus": 1_000 },
      modelMaxReasoningTokens: { "qwen-plus": 2_000 },
    };
    expect(replyBounds({ enable_thinking: true }, "qwen-plus", configured)).toEqual({
      answer: 1_000,
      reasoning: 2_000,
    });
  });
});

describe("reservationAsk and grantedReply", () => {
  it("asks for the prompt and every choice's bounds, accepting the prompt and MIN_REPLY_TOKENS per choice", () => {
    expect(reservationAsk(1_000, { answer: 500, reasoning: 300 }, 2)).toEqual({
      wanted: 1_000 + 800 * 2,
      minimum: 1_000 + MIN_REPLY_TOKENS * 2,
    });
    // Never a minimum above what is wanted.
    expect(reservationAsk(1_000, { answer: 10, reasoning: 0 })).toEqual({ wanted: 1_010, minimum: 1_010 });
  });

  it("sends nothing new upstream for a whole grant", () => {
    const bounds = replyBounds({ enable_thinking: true }, "qwen-plus", config);
    const whole = reservationAsk(100, bounds).wanted;
    expect(grantedReply(whole, 100, { enable_thinking: true }, "qwen-plus", bounds, config)).toEqual({
      roomTokens: whole - 100,
      enforcedUpstream: true,
    });
  });

  it("splits a partial grant between answer and reasoning and never raises the caller's limits", () => {
    const p = { enable_thinking: true, n: 2 };
    const bounds = replyBounds(p, "qwen-plus", config);
    const reply = grantedReply(10_100, 100, p, "qwen-plus", bounds, config);
    expect(reply.roomTokens).toBe(10_000);
    expect(reply.maxTokens! + reply.thinkingBudget!).toBeLessThanOrEqual(5_000);
    expect(reply.thinkingBudget).toBe(Math.floor((5_000 * 81_920) / (32_768 + 81_920)));
    expect(reply.enforcedUpstream).toBe(true);
    const small = { max_tokens: 50, thinking_budget: 60, enable_thinking: true };
    const capped = grantedReply(
      10_100,
      100,
      small,
      "qwen-plus",
      replyBounds(small, "qwen-plus", config),
      config,
    );
    expect([capped.maxTokens, capped.thinkingBudget]).toEqual([50, 60]);
  });

  it("tells DashScope only what it takes: no thinking_budget to a thinking-only model, no max_tokens to an unknown one", () => {
    const qwq = replyBounds({}, "qwq-plus", config);
    const thinkingOnly = grantedReply(5_000, 100, {}, "qwq-plus", qwq, config);
    expect(thinkingOnly.thinkingBudget).toBeUndefined();
    expect(thinkingOnly.maxTokens).toBeUndefined();
    expect(thinkingOnly.enforcedUpstream).toBe(false);
    const turbo = grantedReply(5_000, 100, {}, "qwen-turbo", replyBounds({}, "qwen-turbo", config), config);
    expect(turbo).toEqual({ roomTokens: 4_900, enforcedUpstream: false });
    // The caller's own max_tokens is always sent, lowered to the grant.
    const own = grantedReply(
      5_000,
      100,
      { max_tokens: 60_000 },
      "qwen-turbo",
      { answer: 60_000, reasoning: 0 },
      config,
    );
    expect(own).toEqual({ roomTokens: 4_900, maxTokens: 4_900, enforcedUpstream: true });
  });
});

describe("ReplyLimit", () => {
  it("counts content, reasoning and tool-call fragments and says when the room is reached", () => {
    const limit = new ReplyLimit(10);
    const chunk = (delta: Record<string, unknown>) => ({
      id: "c",
      object: "chat.completion.chunk" as const,
      created: 0,
      model: "m",
      choices: [{ index: 0, delta }],
    });
    expect(limit.addChunk(chunk({ reasoning_content: "abcdefgh" }))).toBe(false);
    expect(limit.generatedTokens).toBe(2);
    expect(
      limit.addChunk(chunk({ tool_calls: [{ index: 0, function: { name: "get", arguments: '{"a":1}' } }] })),
    ).toBe(false);
    expect(limit.generatedTokens).toBe(2 + 1 + 2);
    expect(limit.addChunk(chunk({ content: "你好世界 and more" }))).toBe(true);
    expect(limit.reached).toBe(true);
  });
});

describe("reserveQuota", () => {
  const user = async (budget: number | null, blocked = false) => {
    const id = `reserve-${crypto.randomUUID()}`;
    await dbOf(id)
      .prepare("INSERT INTO users (id, created_at, daily_token_budget, blocked_at) VALUES (?, ?, ?, ?)")
      .bind(id, Date.now(), budget, blocked ? Date.now() : null)
      .run();
    return id;
  };
  const reserve = (userId: string, tokens: number, minimumTokens?: number) => {
    const now = Date.now();
    return reserveQuota(
      dbOf(userId),
      crypto.randomUUID(),
      { userId, day: utcDay(now), tokens, minimumTokens, now, defaultBudget: 1_000_000 },
      now + 60_000,
    );
  };

  it("grants what is wanted, else what remains down to the minimum, else nothing", async () => {
    const id = await user(10_000);
    expect((await reserve(id, 6_000, 1_000)).granted).toBe(6_000);
    expect((await reserve(id, 6_000, 1_000)).granted).toBe(4_000);
    const refused = await reserve(id, 6_000, 1_000);
    expect(refused.granted).toBeNull();
    expect(refused.state).toMatchObject({ budget: 10_000, reserved: 10_000 });
    // Without a minimum it is all or nothing, as before.
    expect((await reserve(await user(10_000), 12_000)).granted).toBeNull();
  });

  it("grants what is wanted under an unlimited budget, and nothing to a blocked user", async () => {
    expect((await reserve(await user(-1), 5_000_000, 1)).granted).toBe(5_000_000);
    expect((await reserve(await user(null, true), 10, 1)).granted).toBeNull();
  });
});
