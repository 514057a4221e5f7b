import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  chatCompletionRequestSchema,
  parseChatCompletionRequest,
  parseGenerationParameters,
} from "../src/dashscope/schema";
import { MAX_DATA_URI_BYTES } from "../src/dashscope/schema/media-url";
import type { ChatMessage } from "../src/dashscope/schema/messages";
import { checkRequestRules } from "../src/dashscope/schema/rules";
import { ApiError } from "../src/errors/api-error";
import { toInvalidRequest } from "../src/errors/invalid-request";

const USER_HI: ChatMessage = { role: "user", content: "Hi" };
const base = (extra: Record<string, unknown> = {}) => ({ model: "qwen-plus", messages: [USER_HI], ...extra });

const WEATHER_TOOL = {
  type: "function",
  function: {
    name: "get_current_weather",
    description: "Weather of a city",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};
const CALL = {
  id: "call_0bdcc155f2534f65a05cb1",
  type: "function",
  function: { name: "get_current_weather", arguments: '{"location": "Hangzhou"}' },
};

/** Parses `body`, expects success and returns the value. */
function accept(body: unknown) {
  const result = parseChatCompletionRequest(body);
  if (!result.ok) throw new Error(`expected acceptance, got ${result.error.param}: ${result.error.message}`);
  return result.value;
}

/** Parses `body`, expects a rejection naming `param`, and returns the message. */
function reject(body: unknown, param: string): string {
  const result = parseChatCompletionRequest(body);
  expect(result.ok, `expected rejection at ${param}`).toBe(false);
  if (result.ok) return "";
  expect(result.error.param).toBe(param);
  expect(result.error.message).toMatch(/\.$/);
  return result.error.message;
}

type Case = [label: string, extra: Record<string, unknown>, rejectedAt: string | null];

/** Each parameter at its edges: `null` = accepted, otherwise the expected `param`. */
const parameterCases: Case[] = [
  ["temperature 0", { temperature: 0 }, null],
  ["temperature 1.99", { temperature: 1.99 }, null],
  ["temperature 2", { temperature: 2 }, "temperature"],
  ["temperature -0.1", { temperature: -0.1 }, "temperature"],
  ["temperature as string", { temperature: "1" }, "temperature"],
  ["top_p 0", { top_p: 0 }, "top_p"],
  ["top_p 0.01", { top_p: 0.01 }, null],
  ["top_p 1", { top_p: 1 }, null],
  ["top_p 1.01", { top_p: 1.01 }, "top_p"],
  ["top_k null", { top_k: null }, null],
  ["top_k 0", { top_k: 0 }, null],
  ["top_k 150", { top_k: 150 }, null],
  ["top_k -1", { top_k: -1 }, "top_k"],
  ["top_k 1.5", { top_k: 1.5 }, "top_k"],
  ["presence_penalty -2", { presence_penalty: -2 }, null],
  ["presence_penalty 2", { presence_penalty: 2 }, null],
  ["presence_penalty 2.01", { presence_penalty: 2.01 }, "presence_penalty"],
  ["presence_penalty -2.01", { presence_penalty: -2.01 }, "presence_penalty"],
  ["max_tokens 1", { max_tokens: 1 }, null],
  ["max_tokens 0", { max_tokens: 0 }, "max_tokens"],
  ["max_tokens 1.5", { max_tokens: 1.5 }, "max_tokens"],
  ["max_input_tokens 129024", { max_input_tokens: 129_024 }, null],
  ["max_input_tokens 0", { max_input_tokens: 0 }, "max_input_tokens"],
  ["n 1", { n: 1 }, null],
  ["n 4", { n: 4 }, null],
  ["n 0", { n: 0 }, "n"],
  ["n 5", { n: 5 }, "n"],
  ["n 2 with tools", { n: 2, tools: [WEATHER_TOOL] }, "n"],
  ["n 1 with tools", { n: 1, tools: [WEATHER_TOOL] }, null],
  ["n 2 with thinking", { n: 2, enable_thinking: true, stream: true }, "n"],
  // Models that think without being asked are held to the thinking rules (PROTOCOL.md §2.6).
  ["n 2 on a thinking-only model", { model: "qwq-plus", n: 2, stream: true }, "n"],
  ["n 2 on a model that thinks by default", { model: "qwen3-8b", n: 2, stream: true }, "n"],
  [
    "n 2 on a model that thinks by default, thinking off",
    { model: "qwen3-8b", n: 2, enable_thinking: false },
    null,
  ],
  [
    "json_schema on a model that thinks by default",
    { model: "qwen3-8b", response_format: { type: "json_schema", json_schema: { name: "x" } }, stream: true },
    "response_format",
  ],
  [
    "forced tool_choice on a thinking-only model",
    { model: "qwq-plus", tool_choice: "required", tools: [WEATHER_TOOL], stream: true },
    "tool_choice",
  ],
  ["seed 0", { seed: 0 }, null],
  ["seed 2^31-1", { seed: 2 ** 31 - 1 }, null],
  ["seed 2^31", { seed: 2 ** 31 }, "seed"],
  ["seed -1", { seed: -1 }, "seed"],
  ["logprobs true", { logprobs: true }, null],
  ["top_logprobs 0 with logprobs", { logprobs: true, top_logprobs: 0 }, null],
  ["top_logprobs 5 with logprobs", { logprobs: true, top_logprobs: 5 }, null],
  ["top_logprobs 6", { logprobs: true, top_logprobs: 6 }, "top_logprobs"],
  ["top_logprobs without logprobs", { top_logprobs: 2 }, "top_logprobs"],
  ["top_logprobs with logprobs false", { logprobs: false, top_logprobs: 2 }, "top_logprobs"],
  ["stop string", { stop: "END" }, null],
  ["stop strings", { stop: ["END", "STOP"] }, null],
  ["stop token ids", { stop: [151643, 151645] }, null],
  ["stop token sequences", { stop: [[151643], [1, 2]] }, null],
  ["stop mixing strings and ids", { stop: ["END", 151643] }, "stop.1"],
  ["stop mixing ids and sequences", { stop: [1, [2]] }, "stop.1"],
  ["stop negative id", { stop: [-1] }, "stop.0"],
  ["stop number", { stop: 5 }, "stop"],
  ["response_format text", { response_format: { type: "text" } }, null],
  [
    "response_format json_schema",
    {
      response_format: {
        type: "json_schema",
        json_schema: { name: "person", schema: { type: "object" }, strict: true },
      },
    },
    null,
  ],
  [
    "response_format json_schema without name",
    { response_format: { type: "json_schema", json_schema: {} } },
    "response_format.json_schema.name",
  ],
  ["response_format unknown type", { response_format: { type: "yaml" } }, "response_format.type"],
  [
    "response_format json_object without json",
    { response_format: { type: "json_object" } },
    "response_format",
  ],
  [
    "response_format json_object with JSON",
    {
      messages: [{ role: "system", content: "Reply in JSON." }, USER_HI],
      response_format: { type: "json_object" },
    },
    null,
  ],
  [
    "response_format json_object with json in a text part",
    {
      messages: [{ role: "user", content: [{ type: "text", text: "give me json" }] }],
      response_format: { type: "json_object" },
    },
    null,
  ],
  [
    "response_format json_object with thinking",
    {
      messages: [{ role: "user", content: "json please" }],
      response_format: { type: "json_object" },
      enable_thinking: true,
      stream: true,
    },
    "response_format",
  ],
  [
    "response_format json_schema with thinking",
    { response_format: { type: "json_schema", json_schema: { name: "x" } }, enable_thinking: true },
    "response_format",
  ],
  ["modalities text", { modalities: ["text"] }, null],
  [
    "modalities text+audio streamed",
    { modalities: ["text", "audio"], audio: { voice: "Cherry", format: "wav" }, stream: true },
    null,
  ],
  ["modalities audio only", { modalities: ["audio"] }, "modalities"],
  ["modalities audio+text order", { modalities: ["audio", "text"] }, "modalities"],
  ["audio without modalities", { audio: { voice: "Cherry", format: "wav" }, stream: true }, "audio"],
  ["audio with text modality", { modalities: ["text"], audio: { voice: "Cherry", format: "wav" } }, "audio"],
  // DashScope streams audio output only; edge-chat streams it upstream and assembles the answer.
  [
    "audio output not streamed",
    { modalities: ["text", "audio"], audio: { voice: "Cherry", format: "wav" } },
    null,
  ],
  [
    "audio output with thinking",
    { modalities: ["text", "audio"], stream: true, enable_thinking: true },
    "modalities",
  ],
  [
    "audio format mp3",
    { modalities: ["text", "audio"], audio: { voice: "Cherry", format: "mp3" }, stream: true },
    "audio.format",
  ],
  [
    "audio without voice",
    { modalities: ["text", "audio"], audio: { format: "wav" }, stream: true },
    "audio.voice",
  ],
  ["enable_thinking as string", { enable_thinking: "yes" }, "enable_thinking"],
  ["thinking_budget 1", { enable_thinking: true, thinking_budget: 1, stream: true }, null],
  ["thinking_budget alone", { thinking_budget: 4096 }, null],
  ["thinking_budget 0", { thinking_budget: 0 }, "thinking_budget"],
  ["thinking_budget with thinking off", { enable_thinking: false, thinking_budget: 100 }, "thinking_budget"],
  ["tools", { tools: [WEATHER_TOOL] }, null],
  ["tools empty", { tools: [] }, "tools"],
  [
    "tool named search",
    { tools: [{ type: "function", function: { name: "search" } }] },
    "tools.0.function.name",
  ],
  [
    "tool name with a space",
    { tools: [{ type: "function", function: { name: "get weather" } }] },
    "tools.0.function.name",
  ],
  [
    "tool name of 65 chars",
    { tools: [{ type: "function", function: { name: "a".repeat(65) } }] },
    "tools.0.function.name",
  ],
  ["tool name of 64 chars", { tools: [{ type: "function", function: { name: "a".repeat(64) } }] }, null],
  ["tool names duplicated", { tools: [WEATHER_TOOL, WEATHER_TOOL] }, "tools.1.function.name"],
  [
    "tool parameters not an object schema",
    { tools: [{ type: "function", function: { name: "f", parameters: { type: "string" } } }] },
    "tools.0.function.parameters.type",
  ],
  ["tool of another type", { tools: [{ type: "retrieval", function: { name: "f" } }] }, "tools.0.type"],
  ["tool_choice auto without tools", { tool_choice: "auto" }, null],
  ["tool_choice none without tools", { tool_choice: "none" }, null],
  ["tool_choice required with tools", { tool_choice: "required", tools: [WEATHER_TOOL] }, null],
  ["tool_choice required without tools", { tool_choice: "required" }, "tool_choice"],
  [
    "tool_choice named",
    { tool_choice: { type: "function", function: { name: "get_current_weather" } }, tools: [WEATHER_TOOL] },
    null,
  ],
  [
    "tool_choice named, unknown tool",
    { tool_choice: { type: "function", function: { name: "nope" } }, tools: [WEATHER_TOOL] },
    "tool_choice.function.name",
  ],
  [
    "tool_choice named without tools",
    { tool_choice: { type: "function", function: { name: "x" } } },
    "tool_choice",
  ],
  [
    "tool_choice forced with thinking",
    {
      tool_choice: { type: "function", function: { name: "get_current_weather" } },
      tools: [WEATHER_TOOL],
      enable_thinking: true,
    },
    "tool_choice",
  ],
  [
    "tool_choice required with thinking",
    { tool_choice: "required", tools: [WEATHER_TOOL], enable_thinking: true },
    "tool_choice",
  ],
  [
    "tool_choice auto with thinking",
    { tool_choice: "auto", tools: [WEATHER_TOOL], enable_thinking: true },
    null,
  ],
  ["tool_choice any", { tool_choice: "any" }, "tool_choice"],
  ["parallel_tool_calls", { parallel_tool_calls: true, tools: [WEATHER_TOOL] }, null],
  [
    "enable_search with options",
    {
      enable_search: true,
      search_options: {
        forced_search: true,
        search_strategy: "max",
        enable_search_extension: true,
        enable_source: true,
        enable_citation: true,
        citation_format: "[ref_<number>]",
        freshness: 30,
        assigned_site_list: ["example.com"],
      },
    },
    null,
  ],
  [
    "search_strategy fast",
    { enable_search: true, search_options: { search_strategy: "fast" } },
    "search_options.search_strategy",
  ],
  ["search_options without enable_search", { search_options: { forced_search: true } }, "search_options"],
  [
    "search_options with enable_search false",
    { enable_search: false, search_options: { forced_search: true } },
    "search_options",
  ],
  ["search_options unknown key", { enable_search: true, search_options: { foo: 1 } }, "search_options.foo"],
  [
    "search agent with enable_source",
    { enable_search: true, search_options: { search_strategy: "agent", enable_source: true } },
    null,
  ],
  [
    "search agent with forced_search",
    { enable_search: true, search_options: { search_strategy: "agent", forced_search: true } },
    "search_options.forced_search",
  ],
  [
    "search agent_max with extension",
    { enable_search: true, search_options: { search_strategy: "agent_max", enable_search_extension: true } },
    "search_options.enable_search_extension",
  ],
  [
    "search freshness 10",
    { enable_search: true, search_options: { freshness: 10 } },
    "search_options.freshness",
  ],
  ["vl_high_resolution_images", { vl_high_resolution_images: true }, null],
  ["vl_high_resolution_images as number", { vl_high_resolution_images: 1 }, "vl_high_resolution_images"],
  ["enable_code_interpreter", { enable_code_interpreter: true }, null],
  ["stream_options with stream", { stream: true, stream_options: { include_usage: true } }, null],
  ["stream_options without stream", { stream_options: { include_usage: true } }, "stream_options"],
  [
    "stream_options unknown key",
    { stream: true, stream_options: { include_usage: true, chunk: 1 } },
    "stream_options.chunk",
  ],
  ["unknown top-level key", { foo: 1 }, "foo"],
  ["native-only incremental_output", { incremental_output: true }, "incremental_output"],
  ["model empty", { model: "" }, "model"],
  ["messages empty", { messages: [] }, "messages"],
];

describe("request parameters at their edges", () => {
  it.each(parameterCases)("%s", (_label, extra, rejectedAt) => {
    if (rejectedAt === null) accept(base(extra));
    else reject(base(extra), rejectedAt);
  });

  it("requires model and messages", () => {
    expect(reject({ messages: [USER_HI] }, "model")).toBe('"model" is required.');
    expect(reject({ model: "qwen-plus" }, "messages")).toBe('"messages" is required.');
  });

  it("names an unknown parameter in the message", () => {
    expect(reject(base({ foo: 1 }), "foo")).toBe('Unknown parameter: "foo".');
    expect(reject(base({ enable_search: true, search_options: { foo: 1 } }), "search_options.foo")).toBe(
      'Unknown parameter: "foo".',
    );
  });

  it("explains bounds in words", () => {
    expect(reject(base({ temperature: 2 }), "temperature")).toBe('"temperature" must be less than 2.');
    expect(reject(base({ top_p: 0 }), "top_p")).toBe('"top_p" must be greater than 0.');
    expect(reject(base({ top_k: 1.5 }), "top_k")).toBe('"top_k" must be an integer.');
    expect(
      reject(
        base({ search_options: { search_strategy: "fast" }, enable_search: true }),
        "search_options.search_strategy",
      ),
    ).toBe('"search_options.search_strategy" must be one of "turbo", "max", "agent", "agent_max".');
    expect(reject(base({ top_logprobs: 2 }), "top_logprobs")).toBe(
      '"top_logprobs" requires "logprobs": true.',
    );
    expect(reject(base({ modalities: ["audio"] }), "modalities")).toBe(
      '"modalities" must be ["text"] or ["text", "audio"].',
    );
    expect(reject(base({ tool_choice: "any" }), "tool_choice")).toContain('"required"');
  });

  it("returns the parsed request unchanged when valid", () => {
    const body = base({
      temperature: 0.7,
      stream: true,
      stream_options: { include_usage: true },
      tools: [WEATHER_TOOL],
    });
    expect(accept(body)).toEqual(body);
  });

  it("rejects a body that is not an object", () => {
    for (const body of [null, "x", [], 1]) {
      expect(parseChatCompletionRequest(body)).toEqual({
        ok: false,
        error: { message: "The request body must be an object.", param: "" },
      });
    }
    expect(
      toInvalidRequest({ message: "The request body must be an object.", param: "" }).param,
    ).toBeUndefined();
  });

  it("accepts a numeric parameter exactly inside its documented range", () => {
    const ranges: [name: string, inRange: (v: number) => boolean][] = [
      ["temperature", (v) => v >= 0 && v < 2],
      ["top_p", (v) => v > 0 && v <= 1],
      ["presence_penalty", (v) => v >= -2 && v <= 2],
    ];
    for (const [name, inRange] of ranges) {
      fc.assert(
        fc.property(fc.double({ min: -3, max: 3, noNaN: true }), (v) => {
          expect(parseChatCompletionRequest(base({ [name]: v })).ok).toBe(inRange(v));
        }),
      );
    }
    fc.assert(
      fc.property(fc.integer({ min: -10, max: 2 ** 32 }), (seed) => {
        expect(parseChatCompletionRequest(base({ seed })).ok).toBe(seed >= 0 && seed <= 2 ** 31 - 1);
      }),
    );
  });
});

const png = (payload = "iVBORw0KGgo=") => `data:image/png;base64,${payload}`;
const userWith = (...parts: unknown[]) => base({ messages: [{ role: "user", content: parts }] });

describe("content parts", () => {
  const partCases: [label: string, part: Record<string, unknown>, rejectedAt: string | null][] = [
    ["text", { type: "text", text: "hello" }, null],
    ["text with cache_control", { type: "text", text: "hello", cache_control: { type: "ephemeral" } }, null],
    [
      "text with another cache type",
      { type: "text", text: "hello", cache_control: { type: "persistent" } },
      "cache_control.type",
    ],
    ["text without text", { type: "text" }, "text"],
    [
      "image https",
      { type: "image_url", image_url: { url: "https://example.com/dog.jpeg", detail: "high" } },
      null,
    ],
    ["image http", { type: "image_url", image_url: { url: "http://example.com/dog.jpeg" } }, null],
    ["image data URL", { type: "image_url", image_url: { url: png() } }, null],
    ["image data URL without padding", { type: "image_url", image_url: { url: png("iVBORw0KGgo") } }, null],
    [
      "image with cache_control",
      { type: "image_url", image_url: { url: png() }, cache_control: { type: "ephemeral" } },
      null,
    ],
    [
      "image ftp URL",
      { type: "image_url", image_url: { url: "ftp://example.com/dog.jpeg" } },
      "image_url.url",
    ],
    ["image file URL", { type: "image_url", image_url: { url: "file:///tmp/dog.jpeg" } }, "image_url.url"],
    ["image URL without host", { type: "image_url", image_url: { url: "https://" } }, "image_url.url"],
    [
      "image data URL not base64",
      { type: "image_url", image_url: { url: "data:image/png,hello" } },
      "image_url.url",
    ],
    [
      "image data URL with bad base64",
      { type: "image_url", image_url: { url: png("not base64!") } },
      "image_url.url",
    ],
    [
      "image data URL of a video type",
      { type: "image_url", image_url: { url: "data:video/mp4;base64,AAAA" } },
      "image_url.url",
    ],
    [
      "image data URL without media type",
      { type: "image_url", image_url: { url: "data:;base64,AAAA" } },
      "image_url.url",
    ],
    [
      "image bad detail",
      { type: "image_url", image_url: { url: png(), detail: "ultra" } },
      "image_url.detail",
    ],
    ["image url as string", { type: "image_url", image_url: "https://example.com/dog.jpeg" }, "image_url"],
    [
      "audio URL",
      { type: "input_audio", input_audio: { data: "https://example.com/cherry.wav", format: "wav" } },
      null,
    ],
    [
      "audio data URL without media type",
      { type: "input_audio", input_audio: { data: "data:;base64,UklGRg==", format: "wav" } },
      null,
    ],
    [
      "audio data URL",
      { type: "input_audio", input_audio: { data: "data:audio/mpeg;base64,SUQz", format: "mp3" } },
      null,
    ],
    [
      "audio bad format",
      { type: "input_audio", input_audio: { data: "https://example.com/a.xyz", format: "xyz" } },
      "input_audio.format",
    ],
    [
      "audio bad data",
      { type: "input_audio", input_audio: { data: "cherry.wav", format: "wav" } },
      "input_audio.data",
    ],
    ["video frames 2", { type: "video", video: ["https://example.com/1.jpg", png()] }, null],
    ["video frames 1", { type: "video", video: ["https://example.com/1.jpg"] }, "video"],
    [
      "video frames 2049",
      { type: "video", video: Array.from({ length: 2049 }, (_, i) => `https://example.com/${i}.jpg`) },
      "video",
    ],
    [
      "video frames 2048",
      { type: "video", video: Array.from({ length: 2048 }, (_, i) => `https://example.com/${i}.jpg`) },
      null,
    ],
    [
      "video frame bad URL",
      { type: "video", video: ["https://example.com/1.jpg", "s3://bucket/2.jpg"] },
      "video.1",
    ],
    ["video_url", { type: "video_url", video_url: { url: "https://example.com/1.mp4", fps: 2 } }, null],
    [
      "video_url fps 0",
      { type: "video_url", video_url: { url: "https://example.com/1.mp4", fps: 0 } },
      "video_url.fps",
    ],
    ["video_url bad URL", { type: "video_url", video_url: { url: "example.com/1.mp4" } }, "video_url.url"],
    ["unknown part type", { type: "document", document: {} }, "type"],
    ["unknown key in a part", { type: "text", text: "x", lang: "en" }, "lang"],
  ];

  it.each(partCases)("%s", (_label, part, rejectedAt) => {
    if (rejectedAt === null) accept(userWith(part));
    else reject(userWith(part), `messages.0.content.0.${rejectedAt}`);
  });

  it("accepts a data URL of exactly the per-item limit and rejects one byte more", () => {
    // Each 4 base64 characters carry 3 bytes; "AA==" carries 1 and "AAA=" carries 2.
    const fullGroups = "AAAA".repeat(Math.floor(MAX_DATA_URI_BYTES / 3));
    const remainder = MAX_DATA_URI_BYTES % 3;
    expect(remainder).toBe(1);
    accept(userWith({ type: "image_url", image_url: { url: png(`${fullGroups}AA==`) } }));
    const message = reject(
      userWith({ type: "image_url", image_url: { url: png(`${fullGroups}AAA=`) } }),
      "messages.0.content.0.image_url.url",
    );
    expect(message).toContain(String(MAX_DATA_URI_BYTES));
  });

  it("names the wrong discriminator value's options", () => {
    const message = reject(userWith({ type: "document" }), "messages.0.content.0.type");
    expect(message).toContain('"image_url"');
  });

  it("rejects an empty parts array and a non-array, non-string content", () => {
    reject(base({ messages: [{ role: "user", content: [] }] }), "messages.0.content");
    const message = reject(base({ messages: [{ role: "user", content: 5 }] }), "messages.0.content");
    expect(message).toBe('"messages.0.content" must be a string or a non-empty array of content parts.');
  });
});

describe("messages", () => {
  const messageCases: [label: string, messages: unknown[], rejectedAt: string | null][] = [
    ["system string", [{ role: "system", content: "Be brief." }, USER_HI], null],
    [
      "system text parts",
      [
        {
          role: "system",
          content: [{ type: "text", text: "Be brief.", cache_control: { type: "ephemeral" } }],
        },
        USER_HI,
      ],
      null,
    ],
    [
      "system with an image part",
      [{ role: "system", content: [{ type: "image_url", image_url: { url: png() } }] }, USER_HI],
      "messages.0.content.0.type",
    ],
    ["unknown role", [{ role: "developer", content: "x" }], "messages.0.role"],
    ["user without content", [{ role: "user" }], "messages.0.content"],
    [
      "assistant string",
      [USER_HI, { role: "assistant", content: "Hello!", reasoning_content: "Greet back." }, USER_HI],
      null,
    ],
    [
      "assistant null content with tool_calls",
      [USER_HI, { role: "assistant", content: null, tool_calls: [{ ...CALL, index: 0 }] }],
      null,
    ],
    ["assistant without content or tool_calls", [USER_HI, { role: "assistant" }], "messages.1.content"],
    [
      "assistant with an image part",
      [USER_HI, { role: "assistant", content: [{ type: "image_url", image_url: { url: png() } }] }],
      "messages.1.content.0.type",
    ],
    [
      "assistant tool_calls without id",
      [USER_HI, { role: "assistant", content: "", tool_calls: [{ ...CALL, id: undefined }] }],
      "messages.1.tool_calls.0.id",
    ],
    [
      "assistant tool_calls of another type",
      [USER_HI, { role: "assistant", content: "", tool_calls: [{ ...CALL, type: "code" }] }],
      "messages.1.tool_calls.0.type",
    ],
    [
      "assistant tool_calls with object arguments",
      [
        USER_HI,
        {
          role: "assistant",
          content: "",
          tool_calls: [{ ...CALL, function: { name: "f", arguments: { a: 1 } } }],
        },
      ],
      "messages.1.tool_calls.0.function.arguments",
    ],
    [
      "assistant tool_calls with negative index",
      [USER_HI, { role: "assistant", content: "", tool_calls: [{ ...CALL, index: -1 }] }],
      "messages.1.tool_calls.0.index",
    ],
    [
      "assistant tool_calls empty",
      [USER_HI, { role: "assistant", content: "", tool_calls: [] }],
      "messages.1.tool_calls",
    ],
    ["partial assistant last", [USER_HI, { role: "assistant", content: "Once upon", partial: true }], null],
    [
      "partial assistant not last",
      [USER_HI, { role: "assistant", content: "Once upon", partial: true }, USER_HI],
      "messages.1.partial",
    ],
    [
      "tool answer",
      [
        USER_HI,
        { role: "assistant", content: "", tool_calls: [CALL] },
        { role: "tool", tool_call_id: CALL.id, content: "24°C" },
      ],
      null,
    ],
    [
      "tool answers of parallel calls",
      [
        USER_HI,
        { role: "assistant", content: "", tool_calls: [CALL, { ...CALL, id: "call_2" }] },
        { role: "tool", tool_call_id: "call_2", content: "a" },
        { role: "tool", tool_call_id: CALL.id, content: [{ type: "text", text: "b" }] },
        { role: "assistant", content: "Done." },
      ],
      null,
    ],
    [
      "tool without tool_call_id",
      [USER_HI, { role: "assistant", content: "", tool_calls: [CALL] }, { role: "tool", content: "24°C" }],
      "messages.2.tool_call_id",
    ],
    [
      "tool with empty tool_call_id",
      [
        USER_HI,
        { role: "assistant", content: "", tool_calls: [CALL] },
        { role: "tool", tool_call_id: "", content: "x" },
      ],
      "messages.2.tool_call_id",
    ],
    [
      "tool without preceding tool_calls",
      [USER_HI, { role: "tool", tool_call_id: CALL.id, content: "24°C" }],
      "messages.1.tool_call_id",
    ],
    [
      "tool answering an unknown call",
      [
        USER_HI,
        { role: "assistant", content: "", tool_calls: [CALL] },
        { role: "tool", tool_call_id: "call_other", content: "x" },
      ],
      "messages.2.tool_call_id",
    ],
    [
      "tool after a user message",
      [
        USER_HI,
        { role: "assistant", content: "", tool_calls: [CALL] },
        USER_HI,
        { role: "tool", tool_call_id: CALL.id, content: "x" },
      ],
      "messages.3.tool_call_id",
    ],
    [
      "tool after an assistant without calls",
      [
        USER_HI,
        { role: "assistant", content: "", tool_calls: [CALL] },
        { role: "tool", tool_call_id: CALL.id, content: "x" },
        { role: "assistant", content: "ok" },
        { role: "tool", tool_call_id: CALL.id, content: "x" },
      ],
      "messages.4.tool_call_id",
    ],
    [
      "tool with an image part",
      [
        USER_HI,
        { role: "assistant", content: "", tool_calls: [CALL] },
        { role: "tool", tool_call_id: CALL.id, content: [{ type: "image_url", image_url: { url: png() } }] },
      ],
      "messages.2.content.0.type",
    ],
    ["unknown key on a message", [{ role: "user", content: "x", name: "bob" }], "messages.0.name"],
  ];

  it.each(messageCases)("%s", (_label, messages, rejectedAt) => {
    if (rejectedAt === null) accept(base({ messages }));
    else reject(base({ messages }), rejectedAt);
  });
});

describe("parseGenerationParameters", () => {
  it("accepts parameters alone, without the cross-field rules that need the whole request", () => {
    const result = parseGenerationParameters({ temperature: 0.3, top_logprobs: 2, tool_choice: "required" });
    expect(result).toEqual({
      ok: true,
      value: { temperature: 0.3, top_logprobs: 2, tool_choice: "required" },
    });
  });

  it("rejects request-level fields and unknown keys, prefixing the param", () => {
    for (const key of ["model", "messages", "stream", "stream_options", "n", "foo"]) {
      const result = parseGenerationParameters({ [key]: 1 }, "parameters");
      expect(result).toEqual({
        ok: false,
        error: { message: `Unknown parameter: "${key}".`, param: `parameters.${key}` },
      });
    }
  });

  it("names the prefixed field in bounds errors", () => {
    expect(parseGenerationParameters({ temperature: 2 }, "parameters")).toEqual({
      ok: false,
      error: { message: '"parameters.temperature" must be less than 2.', param: "parameters.temperature" },
    });
    const nested = parseGenerationParameters(
      { search_options: { search_strategy: "agent", forced_search: true } },
      "parameters",
    );
    expect(nested.ok ? null : nested.error.param).toBe("parameters.search_options.forced_search");
  });

  it("rejects a non-object", () => {
    const result = parseGenerationParameters([1], "parameters");
    expect(result).toEqual({
      ok: false,
      error: { message: '"parameters" must be an object.', param: "parameters" },
    });
  });
});

describe("checkRequestRules on an assembled request", () => {
  it("reports the same issues through a custom refinement", () => {
    const issues: { path?: PropertyKey[]; message?: string }[] = [];
    const assembled = { ...base({ tools: [WEATHER_TOOL], n: 3 }), messages: [USER_HI] as ChatMessage[] };
    checkRequestRules(assembled as Parameters<typeof checkRequestRules>[0], {
      addIssue: (issue) => void issues.push(issue as never),
    });
    expect(issues).toEqual([{ code: "custom", path: ["n"], message: 'must be 1 when "tools" are given' }]);
  });

  it("runs through chatCompletionRequestSchema", () => {
    expect(chatCompletionRequestSchema.safeParse(base({ stream_options: {} })).success).toBe(false);
    expect(chatCompletionRequestSchema.safeParse(base({ stream: true, stream_options: {} })).success).toBe(
      true,
    );
  });

  it("reports structural issues before rules", () => {
    // top_logprobs without logprobs breaks a rule, but the out-of-range temperature is reported.
    reject(base({ temperature: 3, top_logprobs: 2 }), "temperature");
  });
});

describe("toInvalidRequest", () => {
  it("builds a 400 invalid_request naming the field", () => {
    const result = parseChatCompletionRequest(base({ seed: -1 }));
    if (result.ok) throw new Error("expected rejection");
    const error = toInvalidRequest(result.error);
    expect(error).toBeInstanceOf(ApiError);
    expect(error.status).toBe(400);
    expect(error.toBody()).toEqual({
      error: {
        code: "invalid_request",
        message: '"seed" must be greater than or equal to 0.',
        param: "seed",
      },
    });
  });
});
