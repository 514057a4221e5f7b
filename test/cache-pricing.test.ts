import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { costUsd, MODEL_PRICES } from "../src/chat/pricing";
import { loadConfig } from "../src/config";
import { call, createConversation, endMessage, eventually, newUser, streamTurn } from "./helpers/api";
import type { ChatCompletion } from "./helpers/api-types";
import type { UsageRecordRow } from "./helpers/db-rows";
import { dbOf } from "./helpers/shards";

// Context-cache hits and explicit-cache creation in the ledger's cost, against the stand-in's
// simulated cache (tools/dashscope-stand-in/context-cache.mjs). Prices per PROTOCOL.md §8:
// implicit hits 20% of input, explicit hits 10%, explicit creation 125%.

const MODEL = "qwen-plus";
/** A priced model without explicit cache markers. */
const IMPLICIT_MODEL = "qwen-max";

/** qwen-plus's input and output prices (USD per 1M tokens) as configured: the built-in table under MODEL_PRICES. */
function configuredPrices(model = MODEL): { input: number; output: number } {
  const price = loadConfig(env).modelPrices[model] ?? MODEL_PRICES[model];
  const tier = price?.tiers[0];
  if (!tier || price.tiers.length !== 1) throw new Error(`expected one price tier for ${model}`);
  return { input: tier.input, output: tier.output };
}

/** Prose of `chars` characters no other test sends (so the shared stand-in's cache has never seen it). */
function prose(chars: number): string {
  const sentence = "Ledgers balance when each line is priced at the rate it was billed. ";
  return (crypto.randomUUID() + sentence.repeat(Math.ceil(chars / sentence.length))).slice(0, chars);
}
const marked = (text: string) => [{ type: "text", text, cache_control: { type: "ephemeral" } }];

/** The user's first `count` usage records, once settled (a call settles after its response). */
async function recordOf(userId: string, count: number): Promise<UsageRecordRow[]> {
  return eventually(async () => {
    const rows = (
      await dbOf(userId)
        .prepare("SELECT * FROM usage_records WHERE user_id = ? ORDER BY created_at, rowid")
        .bind(userId)
        .all<UsageRecordRow>()
    ).results;
    return rows.length >= count ? rows : null;
  });
}

type Details = {
  cached_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_type?: string;
};

describe("context-cache prices in the ledger", () => {
  it("/v1/chat/completions: a call with explicit hits and creation costs them at 10% and 125% of input", async () => {
    const user = newUser("cache-price");
    const system = prose(6000);
    const document = prose(9000);
    const first = await call(user, "POST", "/chat/completions", {
      model: MODEL,
      messages: [
        { role: "system", content: marked(system) },
        { role: "user", content: "Summarise. [[stand-in tokens=6]]" },
      ],
    });
    expect(first.status).toBe(200);
    const firstUsage = ((await first.json()) as ChatCompletion).usage!;
    const systemPrefix = (firstUsage.prompt_tokens_details as Details).cache_creation_input_tokens!;
    expect(systemPrefix).toBeGreaterThanOrEqual(1024);

    // Streamed this time: the usage chunk reaches the caller as DashScope sent it, and the ledger.
    const second = await call(user, "POST", "/chat/completions", {
      model: MODEL,
      stream: true,
      stream_options: { include_usage: true },
      messages: [
        { role: "system", content: marked(system) },
        {
          role: "user",
          content: [...marked(document), { type: "text", text: "Summarise this. [[stand-in tokens=9]]" }],
        },
      ],
    });
    expect(second.status).toBe(200);
    const chunks = (await second.text())
      .split("\n\n")
      .map((frame) => frame.replace(/^data: /, ""))
      .filter((data) => data.startsWith("{"))
      .map((data) => JSON.parse(data) as { usage: ChatCompletion["usage"] | null });
    const usage = chunks.at(-1)!.usage!;
    const details = usage.prompt_tokens_details as Details;
    expect(details.cache_type).toBe("ephemeral");
    expect(details.cached_tokens).toBe(systemPrefix);
    const created = details.cache_creation_input_tokens!;
    expect(created).toBeGreaterThan(0);

    const rows = await recordOf(user, 2);
    const row = rows[1]!;
    expect(row).toMatchObject({
      prompt_tokens: usage.prompt_tokens,
      cached_tokens: systemPrefix,
      completion_tokens: 9,
    });
    const { input, output } = configuredPrices();
    const uncached = usage.prompt_tokens - systemPrefix - created;
    const expected =
      (uncached * input + systemPrefix * input * 0.1 + created * input * 1.25 + 9 * output) / 1e6;
    expect(row.cost_usd).toBeCloseTo(expected, 12);
    // And the first call: all of its marked prefix created, nothing hit.
    const firstExpected =
      ((firstUsage.prompt_tokens - systemPrefix) * input + systemPrefix * input * 1.25 + 6 * output) / 1e6;
    expect(rows[0]!.cost_usd).toBeCloseTo(firstExpected, 12);
  });

  it("a conversation turn reports implicit hits in its usage and costs them at 20% of input", async () => {
    const user = newUser("cache-turn");
    // qwen-max: priced, and not in EXPLICIT_CACHE_MODELS (qwen-plus is, so its turns carry markers
    // and get explicit hits instead, test/history-blocks.test.ts).
    const conv = await createConversation(user, { model: IMPLICIT_MODEL });
    await streamTurn(user, conv.id, { content: `${prose(4000)} [[stand-in tokens=5]]` });
    const { events } = await streamTurn(user, conv.id, { content: "And then? [[stand-in tokens=7]]" });
    const usage = endMessage(events.at(-1)).usage!;
    expect(usage.cached_tokens).toBeGreaterThan(0);
    expect(usage.cached_tokens % 256).toBe(0);

    const rows = await recordOf(user, 2);
    const row = rows[1]!;
    expect(row.cached_tokens).toBe(usage.cached_tokens);
    const { input, output } = configuredPrices(IMPLICIT_MODEL);
    const expected =
      ((usage.prompt_tokens - usage.cached_tokens) * input + usage.cached_tokens * input * 0.2 + 7 * output) /
      1e6;
    expect(row.cost_usd).toBeCloseTo(expected, 12);
  });
});

describe("cache prices in config", () => {
  it("MODEL_PRICES sets a tier's cache prices; unset ones are the documented shares of its input", () => {
    const usage = {
      prompt_tokens: 10_000,
      completion_tokens: 100,
      total_tokens: 10_100,
      cached_tokens: 4_000,
      reasoning_tokens: 0,
    };
    const explicit = { creation_tokens: 3_000, explicit: true };
    const prices = loadConfig({
      MODEL_PRICES: JSON.stringify({
        "model-a": { tiers: [{ input: 2, output: 8, explicitCachedInput: 0.5, cacheCreationInput: 3 }] },
        "model-b": { tiers: [{ input: 2, output: 8 }] },
      }),
    }).modelPrices;
    expect(costUsd("model-a", usage, prices, explicit)).toBeCloseTo(
      (3_000 * 2 + 4_000 * 0.5 + 3_000 * 3 + 100 * 8) / 1e6,
      12,
    );
    expect(costUsd("model-b", usage, prices, explicit)).toBeCloseTo(
      (3_000 * 2 + 4_000 * 0.2 + 3_000 * 2.5 + 100 * 8) / 1e6,
      12,
    );
    // Implicit hits (no explicit cache): 20% of input, nothing created.
    expect(costUsd("model-b", usage, prices)).toBeCloseTo((6_000 * 2 + 4_000 * 0.4 + 100 * 8) / 1e6, 12);
  });

  it("EXPLICIT_CACHE_MODELS lists the models that take markers", () => {
    expect(loadConfig({ EXPLICIT_CACHE_MODELS: " qwen3-max, qwen-plus ,," }).explicitCacheModels).toEqual([
      "qwen3-max",
      "qwen-plus",
    ]);
    expect(loadConfig({ EXPLICIT_CACHE_MODELS: "none" }).explicitCacheModels).toEqual([]);
    expect(loadConfig({ EXPLICIT_CACHE_MODELS: "" }).explicitCacheModels).toContain("qwen-plus");
  });
});
