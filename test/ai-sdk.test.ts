import { exports } from "cloudflare:workers";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { APICallError, streamText } from "ai";
import { describe, expect, it } from "vitest";
import { newTag, newUser, standInRequests } from "./helpers/api";
import { tokenFor } from "./helpers/auth";

/** The Vercel AI SDK's OpenAI-compatible provider, pointed at edge-chat as an Expo app would configure it. */
async function providerFor(user: string, apiKey?: string) {
  return createOpenAICompatible({
    name: "edge-chat",
    baseURL: "http://localhost/v1",
    apiKey: apiKey ?? (await tokenFor(user)),
    includeUsage: true,
    fetch: (url, init) => exports.default.fetch(url as string, init as RequestInit),
  });
}

describe("the Vercel AI SDK against edge-chat", () => {
  it("streams text, with usage", async () => {
    const edgeChat = await providerFor(newUser("ai"));
    const tag = newTag();
    const result = streamText({
      model: edgeChat("qwen-plus"),
      prompt: `Say something [[stand-in tokens=7 tag=${tag}]]`,
      maxRetries: 0,
    });
    const pieces: string[] = [];
    for await (const piece of result.textStream) pieces.push(piece);
    expect(pieces.length).toBeGreaterThan(1);
    expect(pieces.join("").split(" ")).toHaveLength(7);
    expect(await result.text).toBe(pieces.join(""));
    expect(await result.finishReason).toBe("stop");
    expect((await result.usage).outputTokens).toBe(7);
    const [sent] = await standInRequests(tag);
    expect(sent!.stream).toBe(true);
  });

  it("streams reasoning as reasoning parts", async () => {
    const edgeChat = await providerFor(newUser("ai"));
    const result = streamText({
      model: edgeChat("qwen-plus"),
      prompt: `Think [[stand-in thinking reasoning=4 tokens=2 tag=${newTag()}]]`,
      maxRetries: 0,
    });
    expect((await result.text).split(" ")).toHaveLength(2);
    expect((await result.reasoningText)?.split(" ")).toHaveLength(4);
  });

  it.each([
    ["a content-filter frame", "midstream=openai", "content_filtered"],
    ["a native throttling frame", "midstream=native", "rate_limited"],
  ])("reports %s mid-stream as an error, not as a finished answer", async (_name, directive, code) => {
    const edgeChat = await providerFor(newUser("ai"));
    const errors: unknown[] = [];
    const result = streamText({
      model: edgeChat("qwen-plus"),
      prompt: `x [[stand-in tokens=8 ${directive} after=3 tag=${newTag()}]]`,
      maxRetries: 0,
      onError: ({ error }) => {
        errors.push(error);
      },
    });
    const parts: { type: string; error?: unknown }[] = [];
    for await (const part of result.fullStream) parts.push(part as { type: string; error?: unknown });
    const errorPart = parts.find((p) => p.type === "error");
    expect(errorPart).toBeDefined();
    expect(JSON.stringify(errorPart!.error)).toContain(code);
    expect(errors).toHaveLength(1);
    expect(
      parts.some((p) => p.type === "finish-step" && (p as { finishReason?: string }).finishReason === "stop"),
    ).toBe(false);
  });

  it("raises APICallError for an upstream rate limit before the stream", async () => {
    const edgeChat = await providerFor(newUser("ai"));
    const errors: unknown[] = [];
    const result = streamText({
      model: edgeChat("qwen-plus"),
      prompt: `x [[stand-in error=limit_requests retry_after=30 tag=${newTag()}]]`,
      maxRetries: 0,
      onError: ({ error }) => {
        errors.push(error);
      },
    });
    await result.consumeStream();
    expect(errors).toHaveLength(1);
    expect(APICallError.isInstance(errors[0])).toBe(true);
    expect((errors[0] as APICallError).statusCode).toBe(429);
    expect((errors[0] as APICallError).message).toMatch(/rate limiting/);
  });
});
