import { beforeEach, describe, expect, inject, it } from "vitest";

// The stand-in's simulation of DashScope's context cache (tools/dashscope-stand-in/context-cache.mjs,
// PROTOCOL.md §8), over HTTP from inside workerd. These tests talk to a stand-in of their own
// (test/global-setup.ts): any `sk-` key is accepted, so keys can differ, and its TTLs are short.

const ORIGIN = inject("standInCacheOrigin");
const TTL_MS = inject("standInCacheTtlMs");
const KEY = "sk-cache-test-a";
const OTHER_KEY = "sk-cache-test-b";
/** DashScope documents no block size; the stand-in counts implicit hits in blocks of this many tokens. */
const BLOCK = 256;

type Details = Record<string, unknown>;
interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: Details;
}
type Message = { role: string; content: string | Record<string, unknown>[] };

/** `chars` characters of prose that differs from every other call's (a counter and a label start it). */
let texts = 0;
function prose(chars: number, label = ""): string {
  const sentence = "The river bends twice before it reaches the old mill by the bridge. ";
  const head = `${label}#${++texts} `;
  return (head + sentence.repeat(Math.ceil(chars / sentence.length))).slice(0, chars);
}
/** The stand-in's prompt-token count of `text` alone: one token per 4 characters, rounded up. */
const tokensOf = (text: string) => Math.ceil(text.length / 4);
const marked = (text: string) => [{ type: "text", text, cache_control: { type: "ephemeral" } }];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends a chat request with `key`, streamed or not, and returns its usage. */
async function usageOf(messages: Message[], { key = KEY, stream = false } = {}): Promise<Usage> {
  const res = await fetch(`${ORIGIN}/compatible-mode/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      model: "qwen-plus",
      messages,
      ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
    }),
  });
  expect(res.status).toBe(200);
  const text = await res.text();
  if (!stream) return (JSON.parse(text) as { usage: Usage }).usage;
  const chunks = text
    .split("\n\n")
    .map((frame) => frame.replace(/^data: /, ""))
    .filter((data) => data.startsWith("{"))
    .map((data) => JSON.parse(data) as { usage: Usage | null });
  const usage = chunks.at(-1)?.usage;
  if (!usage) throw new Error("no usage chunk");
  return usage;
}

const cached = (u: Usage) => u.prompt_tokens_details.cached_tokens as number;

beforeEach(async () => {
  const res = await fetch(`${ORIGIN}/__stand-in/cache`, { method: "DELETE" });
  expect(res.status).toBe(200);
});

describe("implicit cache", () => {
  it("a repeated long prefix hits in whole 256-token blocks, streamed and not", async () => {
    const system = prose(6000);
    const first = await usageOf([
      { role: "system", content: system },
      { role: "user", content: "Alpha: what is at the bend?" },
    ]);
    expect(first.prompt_tokens_details).toEqual({ cached_tokens: 0 });

    for (const [stream, question] of [
      [true, "Beta: and after the mill?"],
      [false, "Gamma: how far is the bridge?"],
    ] as const) {
      const next = await usageOf(
        [
          { role: "system", content: system },
          { role: "user", content: question },
        ],
        { stream },
      );
      expect(next.prompt_tokens_details).toEqual({ cached_tokens: cached(next) });
      expect(cached(next) % BLOCK).toBe(0);
      expect(cached(next)).toBeGreaterThan(0);
      expect(cached(next)).toBeLessThan(next.prompt_tokens);
      // Only the question (and its message's envelope) differs: the hit covers the rest but for
      // less than one block.
      expect(next.prompt_tokens - cached(next)).toBeLessThan(BLOCK + tokensOf(question) + 8);
    }
  });

  it("a changed start, another API key or a short prompt gets no hit", async () => {
    const system = prose(6000);
    const ask = (start: string) => [
      { role: "system", content: start },
      { role: "user", content: "What is at the bend?" },
    ];
    expect(cached(await usageOf(ask(system)))).toBe(0);
    expect(cached(await usageOf(ask(`X${system.slice(1)}`)))).toBe(0);
    expect(cached(await usageOf(ask(system), { key: OTHER_KEY }))).toBe(0);
    // The first key's entry is still there.
    expect(cached(await usageOf(ask(system)))).toBeGreaterThan(0);

    const short = [
      { role: "system", content: "Be brief." },
      { role: "user", content: "Hi there, how are you today?" },
    ];
    expect((await usageOf(short)).prompt_tokens).toBeLessThan(BLOCK);
    expect((await usageOf(short)).prompt_tokens_details).toEqual({ cached_tokens: 0 });
  });

  it("DELETE /__stand-in/cache forgets every entry", async () => {
    const messages = [
      { role: "system", content: prose(4000) },
      { role: "user", content: "Once." },
    ];
    await usageOf(messages);
    expect(cached(await usageOf(messages))).toBeGreaterThan(0);
    const res = await fetch(`${ORIGIN}/__stand-in/cache`, { method: "DELETE" });
    expect(((await res.json()) as { cleared: number }).cleared).toBeGreaterThan(0);
    expect(cached(await usageOf(messages))).toBe(0);
  });
});

describe("explicit cache", () => {
  it("a marker creates the prefix, later requests hit it within the TTL, reset by each hit", async () => {
    const system = prose(6000);
    const ask = (question: string): Message[] => [
      { role: "system", content: marked(system) },
      { role: "user", content: question },
    ];
    // Implicit and explicit are exclusive per request: the unmarked twin seeds nothing a marked request hits.
    await usageOf([
      { role: "system", content: system },
      { role: "user", content: "Unmarked." },
    ]);

    const created = await usageOf(ask("One?"));
    const prefix = created.prompt_tokens_details.cache_creation_input_tokens as number;
    // As captured from DashScope (PROTOCOL.md §8), keys in that order.
    expect(created.prompt_tokens_details).toStrictEqual({
      text_tokens: created.prompt_tokens,
      cache_creation: { ephemeral_5m_input_tokens: prefix },
      cache_creation_input_tokens: prefix,
      cache_type: "ephemeral",
      cached_tokens: 0,
    });
    expect(Object.keys(created.prompt_tokens_details)).toEqual([
      "text_tokens",
      "cache_creation",
      "cache_creation_input_tokens",
      "cache_type",
      "cached_tokens",
    ]);
    // The prefix is the system message: all of the prompt but the question and the reply priming.
    expect(prefix).toBeGreaterThanOrEqual(tokensOf(system));
    expect(prefix).toBeLessThan(tokensOf(system) + 8);

    const hit = (u: Usage) =>
      expect(u.prompt_tokens_details).toMatchObject({
        cache_creation_input_tokens: 0,
        cache_creation: { ephemeral_5m_input_tokens: 0 },
        cache_type: "ephemeral",
        cached_tokens: prefix,
      });
    hit(await usageOf(ask("Two?"), { stream: true }));
    await sleep(TTL_MS * 0.6);
    hit(await usageOf(ask("Three?")));
    // 1.2 TTLs after the creation: alive only because the hit before reset its TTL.
    await sleep(TTL_MS * 0.6);
    hit(await usageOf(ask("Four?")));
    // Not asked for a whole TTL: gone, and the next request creates it again.
    await sleep(TTL_MS + 200);
    expect((await usageOf(ask("Five?"))).prompt_tokens_details).toMatchObject({
      cache_creation_input_tokens: prefix,
      cached_tokens: 0,
    });
  });

  it("with two markers, hits the first prefix and creates only the rest", async () => {
    const system = prose(5000);
    const document = prose(8000);
    const first = await usageOf([
      { role: "system", content: marked(system) },
      { role: "user", content: "Summarise." },
    ]);
    const systemPrefix = first.prompt_tokens_details.cache_creation_input_tokens as number;
    const both = await usageOf([
      { role: "system", content: marked(system) },
      { role: "user", content: [...marked(document), { type: "text", text: "Summarise this." }] },
    ]);
    const created = both.prompt_tokens_details.cache_creation_input_tokens as number;
    expect(both.prompt_tokens_details.cached_tokens).toBe(systemPrefix);
    // The second prefix adds the document and its message's envelope.
    expect(created).toBeGreaterThanOrEqual(tokensOf(document));
    expect(created).toBeLessThan(tokensOf(document) + 8);
    expect(both.prompt_tokens - systemPrefix - created).toBeLessThan(tokensOf("Summarise this.") + 8);
  });

  it("a marked prefix under 1,024 tokens is never cached", async () => {
    const ask = [
      { role: "system", content: marked(prose(3000)) },
      { role: "user", content: "Short?" },
    ];
    for (let i = 0; i < 2; i++) {
      expect((await usageOf(ask)).prompt_tokens_details).toMatchObject({
        cache_creation_input_tokens: 0,
        cached_tokens: 0,
      });
    }
  });
});
