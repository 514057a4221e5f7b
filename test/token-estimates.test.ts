import { describe, expect, it } from "vitest";
import {
  estimateContentTokens,
  estimateParameterTokens,
  estimateRequestTokens,
  estimateTextTokens,
  HIGH_RESOLUTION_IMAGE_TOKENS,
  IMAGE_TOKENS,
  MEDIA_PART_TOKENS,
  REQUEST_OVERHEAD_TOKENS,
  replyReserve,
} from "../src/chat/tokens";
import { thinks } from "../src/dashscope/thinking";

const image = { type: "image_url", image_url: { url: "https://example.com/a.png" } };
const frames = (n: number) => ({
  type: "video",
  video: Array.from({ length: n }, (_, i) => `https://example.com/${i}.jpg`),
});

describe("token estimates", () => {
  it("count every content part: images at the cap (higher with vl_high_resolution_images), each video frame as an image", () => {
    const text = { type: "text", text: "abcd" };
    expect(estimateContentTokens([text, image])).toBe(1 + IMAGE_TOKENS);
    expect(estimateContentTokens([image], { highResolutionImages: true })).toBe(HIGH_RESOLUTION_IMAGE_TOKENS);
    expect(estimateContentTokens([frames(16)])).toBe(16 * IMAGE_TOKENS);
    expect(
      estimateContentTokens([
        { type: "input_audio", input_audio: { data: "https://example.com/a.wav", format: "wav" } },
      ]),
    ).toBe(MEDIA_PART_TOKENS);
  });

  it("count tool definitions, a forced tool choice and a json_schema response format; not a json_object one", () => {
    const tools = [{ type: "function", function: { name: "get_time", description: "x".repeat(400) } }];
    const choice = { type: "function", function: { name: "get_time" } };
    const schema = { type: "json_schema", json_schema: { name: "r", schema: { type: "object" } } };
    expect(estimateParameterTokens({ tools })).toEqual({
      tools: estimateTextTokens(JSON.stringify(tools)),
      responseFormat: 0,
    });
    expect(estimateParameterTokens({ tools, tool_choice: choice }).tools).toBe(
      estimateTextTokens(JSON.stringify(tools)) + estimateTextTokens(JSON.stringify(choice)),
    );
    expect(estimateParameterTokens({ tool_choice: "auto", response_format: schema })).toEqual({
      tools: 0,
      responseFormat: estimateTextTokens(JSON.stringify(schema)),
    });
    expect(estimateParameterTokens({ response_format: { type: "json_object" } }).responseFormat).toBe(0);
  });

  it("a request's estimate is its messages, its prompt parameters and the reply priming", () => {
    const tools = [{ type: "function", function: { name: "get_time" } }];
    const bare = estimateRequestTokens({ messages: [{ content: "hi" }] });
    expect(estimateRequestTokens({ messages: [{ content: "hi" }], tools })).toBe(
      bare + estimateTextTokens(JSON.stringify(tools)),
    );
    expect(estimateRequestTokens({ messages: [{ content: [image] }], vl_high_resolution_images: true })).toBe(
      4 + HIGH_RESOLUTION_IMAGE_TOKENS + REQUEST_OVERHEAD_TOKENS,
    );
  });

  it("the reply's room: max_tokens, plus thinking_budget when thinking; unset, the default, at most a quarter of the window", () => {
    expect(replyReserve({ max_tokens: 100, thinking_budget: 50 }, true, 8_192, 32_768)).toEqual({
      answer: 100,
      reasoning: 50,
    });
    expect(replyReserve({ thinking_budget: 50 }, false, 8_192, 32_768)).toEqual({
      answer: 8_192,
      reasoning: 0,
    });
    expect(replyReserve({}, true, 8_192, 3_072)).toEqual({ answer: 768, reasoning: 768 });
    expect(replyReserve({}, true, 8_192, Number.POSITIVE_INFINITY)).toEqual({
      answer: 8_192,
      reasoning: 8_192,
    });
  });
});

describe("which models think", () => {
  it.each([
    ["qwen-plus", undefined, false],
    ["qwen-plus", true, true],
    ["qwen3-max", undefined, false],
    ["qwen3.5-plus", undefined, true],
    ["qwen3.6-plus-2026-04-02", undefined, true],
    ["qwen3.5-plus", false, false],
    ["qwen3-8b", undefined, true],
    ["qwen3-235b-a22b", undefined, true],
    ["qwen3-235b-a22b-instruct-2507", undefined, false],
    ["qwen3-235b-a22b-thinking-2507", false, true],
    ["qwq-plus", false, true],
    ["qvq-max", undefined, true],
    ["deepseek-r1", undefined, true],
    ["qwen3-vl-plus", undefined, false],
  ])("%s with enable_thinking %s: %s", (model, enableThinking, expected) => {
    expect(thinks(model, enableThinking)).toBe(expected);
  });
});
