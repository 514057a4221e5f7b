import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { usageSummary } from "../src/chat/usage";
import {
  type AccumulatedCompletion,
  CompletionAccumulator,
  completionFromAccumulated,
} from "../src/dashscope/accumulator";
import { DashScopeEventDecoder, decodeDashScopeStream } from "../src/dashscope/stream";
import type { StreamEvent } from "../src/dashscope/types";
import { STREAM_FIXTURES } from "./fixtures/dashscope";
import { splitAt } from "./helpers/chunks";

const encoder = new TextEncoder();

function decodeChunks(chunks: Uint8Array[]): StreamEvent[] {
  const decoder = new DashScopeEventDecoder();
  const events: StreamEvent[] = [];
  for (const chunk of chunks) events.push(...decoder.push(chunk));
  events.push(...decoder.end());
  return events;
}

function accumulate(events: StreamEvent[]): AccumulatedCompletion {
  const acc = new CompletionAccumulator();
  for (const event of events) acc.push(event);
  return acc.finish();
}

/** Decodes and accumulates an SSE text fed in one piece. */
function run(text: string): { events: StreamEvent[]; result: AccumulatedCompletion } {
  const events = decodeChunks([encoder.encode(text)]);
  return { events, result: accumulate(events) };
}

/** One `data:` event with a chunk envelope around `choices`. */
function chunk(choices: unknown[], extra: Record<string, unknown> = {}): string {
  const envelope = {
    choices,
    object: "chat.completion.chunk",
    usage: null,
    created: 1770343950,
    model: "qwen-plus",
    id: "chatcmpl-6b9f079d-c440-9fc5-bb6a-963ad8387e02",
    ...extra,
  };
  return `data: ${JSON.stringify(envelope)}\n\n`;
}

/** A chunk whose only choice carries tool-call fragments. */
function toolChunk(fragments: unknown[], delta: Record<string, unknown> = {}): string {
  return chunk([
    { delta: { ...delta, tool_calls: fragments }, index: 0, finish_reason: null, logprobs: null },
  ]);
}

const FINISH_TOOL_CALLS = chunk([{ finish_reason: "tool_calls", delta: {}, index: 0, logprobs: null }]);
const DONE = "data: [DONE]\n\n";

describe("fixtures", () => {
  it("stream-text-usage: content, usage, completed", () => {
    const { result } = run(STREAM_FIXTURES["stream-text-usage.sse"]);
    expect(result).toEqual({
      id: "chatcmpl-428b414f-fdd4-94c6-b179-8f576ad653a8",
      model: "qwen-plus",
      created: 1726132850,
      choices: [
        {
          index: 0,
          role: "assistant",
          content: "I am a large language model from Alibaba Cloud. My name is Qwen.",
          reasoning_content: "",
          tool_calls: [],
          logprobs: null,
          audio: null,
          finish_reason: "stop",
        },
      ],
      usage: {
        prompt_tokens: 22,
        completion_tokens: 17,
        total_tokens: 39,
        prompt_tokens_details: { cached_tokens: 0 },
      },
      error: null,
      sawDone: true,
      status: "completed",
    });
    expect(usageSummary(result.usage)).toEqual({
      prompt_tokens: 22,
      completion_tokens: 17,
      total_tokens: 39,
      cached_tokens: 0,
      reasoning_tokens: 0,
    });
  });

  it("stream-thinking: reasoning then content, reasoning tokens", () => {
    const { result } = run(STREAM_FIXTURES["stream-thinking.sse"]);
    expect(result.status).toBe("completed");
    expect(result.choices).toHaveLength(1);
    expect(result.choices[0]).toMatchObject({
      reasoning_content: "The user asks who I am. I should introduce myself briefly.",
      content: "I am Qwen, a model from Alibaba Cloud.",
      finish_reason: "stop",
    });
    expect(usageSummary(result.usage)).toEqual({
      prompt_tokens: 10,
      completion_tokens: 360,
      total_tokens: 370,
      cached_tokens: 0,
      reasoning_tokens: 342,
    });
  });

  it("stream-tool-call: arguments assembled from fragments (PROTOCOL T3)", () => {
    const { result } = run(STREAM_FIXTURES["stream-tool-call.sse"]);
    expect(result.status).toBe("completed");
    expect(result.choices[0]?.tool_calls).toEqual([
      {
        id: "call_0bdcc155f2534f65a05cb1",
        type: "function",
        function: { name: "get_current_weather", arguments: '{"location": "Hangzhou"}' },
      },
    ]);
    expect(JSON.parse(result.choices[0]?.tool_calls[0]?.function.arguments ?? "")).toEqual({
      location: "Hangzhou",
    });
    expect(result.choices[0]?.content).toBe("");
    expect(result.choices[0]?.finish_reason).toBe("tool_calls");
    expect(usageSummary(result.usage)).toMatchObject({
      prompt_tokens: 236,
      cached_tokens: 0,
      reasoning_tokens: 0,
    });
  });

  it("stream-n2: both choices, sorted by index, each with its finish_reason", () => {
    const { result } = run(STREAM_FIXTURES["stream-n2.sse"]);
    expect(result.status).toBe("completed");
    expect(result.choices.map((c) => [c.index, c.content, c.finish_reason])).toEqual([
      [0, "Sunrise over the bay.", "stop"],
      [1, "Morning light on the water.", "stop"],
    ]);
    // This usage chunk has no detail objects.
    expect(result.usage).toEqual({ prompt_tokens: 18, completion_tokens: 14, total_tokens: 32 });
    expect(usageSummary(result.usage)).toEqual({
      prompt_tokens: 18,
      completion_tokens: 14,
      total_tokens: 32,
      cached_tokens: 0,
      reasoning_tokens: 0,
    });
  });

  it("stream-logprobs: entries kept; no usage chunk means usage null", () => {
    const { result } = run(STREAM_FIXTURES["stream-logprobs.sse"]);
    expect(result.status).toBe("completed");
    expect(result.choices[0]?.content).toBe("2");
    expect(result.choices[0]?.logprobs).toEqual({
      content: [
        {
          top_logprobs: [
            { logprob: 0.0, bytes: [50], token: "2" },
            { logprob: -17.25, bytes: [51], token: "3" },
          ],
          logprob: 0.0,
          bytes: [50],
          token: "2",
        },
      ],
    });
    expect(result.usage).toBeNull();
    expect(usageSummary(result.usage)).toBeNull();
  });

  it("stream-omni-audio: text plus concatenated base64 audio, audio token details", () => {
    const { result } = run(STREAM_FIXTURES["stream-omni-audio.sse"]);
    expect(result.status).toBe("completed");
    const choice = result.choices[0];
    expect(choice?.content).toBe("I am Qwen.");
    expect(choice?.audio).toEqual({
      id: "audio_a68eca3b-c67e-4666-a72f-73c0b4919860",
      data: "/v8AAAAAAAAAAAAAAAAA" + "AAD+/wEA/v8CAP3/",
      transcript: "",
      expires_at: 1757647879,
    });
    // 15 + 12 bytes of PCM s16le: the concatenation must stay valid base64.
    expect(atob(choice?.audio?.data ?? "").length).toBe(27);
    expect(result.usage?.completion_tokens_details).toEqual({ audio_tokens: 83, text_tokens: 20 });
    expect(result.usage?.prompt_tokens_details).toEqual({ text_tokens: 207 });
    expect(usageSummary(result.usage)).toMatchObject({
      cached_tokens: 0,
      reasoning_tokens: 0,
      total_tokens: 310,
    });
  });

  it.each(Object.entries(STREAM_FIXTURES))(
    "%s: any re-chunking yields the same events and result",
    (_, text) => {
      const bytes = encoder.encode(text);
      const { events, result } = run(text);
      fc.assert(
        fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 80 }), (cuts) => {
          const split = decodeChunks(splitAt(bytes, cuts));
          expect(split).toEqual(events);
          expect(accumulate(split)).toEqual(result);
        }),
        { numRuns: 50 },
      );
    },
  );
});

describe("mid-stream errors", () => {
  it("Shape A (data: {error}) → interrupted, partial content kept, error info", () => {
    const { events, result } = run(STREAM_FIXTURES["stream-midstream-error-openai-shape.sse"]);
    expect(events.map((e) => e.type)).toEqual(["chunk", "chunk", "error"]);
    expect(result.status).toBe("interrupted");
    expect(result.sawDone).toBe(false);
    expect(result.choices[0]?.content).toBe("Here is the summary");
    expect(result.choices[0]?.finish_reason).toBeNull();
    expect(result.error).toEqual({
      shape: "openai",
      status: null,
      code: "data_inspection_failed",
      message:
        "Output data may contain inappropriate content. For details, see: https://help.aliyun.com/zh/model-studio/error-code#inappropriate-content",
      requestId: "8d1ef3ff-dfa9-98ef-854f-e2942931508b",
    });
  });

  it("Shape A followed by [DONE] and more chunks is still interrupted; later events are ignored", () => {
    const more = chunk([{ delta: { content: " and more" }, index: 0, finish_reason: "stop" }]);
    const { result } = run(STREAM_FIXTURES["stream-midstream-error-openai-shape.sse"] + more + DONE);
    expect(result.status).toBe("interrupted");
    expect(result.sawDone).toBe(false);
    expect(result.choices[0]?.content).toBe("Here is the summary");
    expect(result.choices[0]?.finish_reason).toBeNull();
    expect(result.error?.code).toBe("data_inspection_failed");
  });

  it("Shape A without param/type/id still yields the code and message", () => {
    const { result } = run(
      'data: {"error":{"code":"data_inspection_failed","message":"Output data may contain inappropriate content."}}\n\n',
    );
    expect(result.error).toEqual({
      shape: "openai",
      status: null,
      code: "data_inspection_failed",
      message: "Output data may contain inappropriate content.",
      requestId: null,
    });
  });

  const NATIVE_ERROR = {
    shape: "native",
    status: 429,
    code: "Throttling.AllocationQuota",
    message: "Allocated quota exceeded, please increase your quota limit.",
    requestId: "70acdc21-a546-489a-b5d6-650df970a4ef",
  };

  it("Shape B (native event:error frame) → status 429 and the native code", () => {
    const { events, result } = run(STREAM_FIXTURES["stream-midstream-error-native-frame.sse"]);
    expect(events).toEqual([{ type: "error", error: NATIVE_ERROR }]);
    expect(result.status).toBe("interrupted");
    expect(result.choices).toEqual([]);
    expect(result.error).toEqual(NATIVE_ERROR);
  });

  it("Shape B after some content keeps the partial content, also without the final blank line", () => {
    const text = STREAM_FIXTURES["stream-text-usage.sse"];
    const head = `${text.split("\n\n").slice(0, 3).join("\n\n")}\n\n`;
    const native = STREAM_FIXTURES["stream-midstream-error-native-frame.sse"];
    for (const tail of [native, native.trimEnd()]) {
      const { result } = run(head + tail);
      expect(result.status).toBe("interrupted");
      expect(result.choices[0]?.content).toBe("I am a large language model");
      expect(result.error).toEqual(NATIVE_ERROR);
    }
  });

  it("the status comment applies only to its own frame", () => {
    const { events } = run(
      ':HTTP_STATUS/200\ndata: {"choices":[]}\n\nevent:error\ndata:{"code":"X","message":"m"}\n\n',
    );
    expect(events[0]?.type).toBe("chunk");
    expect(events[1]).toEqual({
      type: "error",
      error: { shape: "native", status: null, code: "X", message: "m", requestId: null },
    });
  });

  it("data that is not JSON → malformed error, interrupted, partial content kept", () => {
    const first = chunk([{ delta: { content: "Hi", role: "assistant" }, index: 0, finish_reason: null }]);
    const { events, result } = run(`${first}data: {not json\n\n${DONE}`);
    expect(events[1]).toMatchObject({ type: "error", error: { shape: "malformed", status: null } });
    expect(result.status).toBe("interrupted");
    expect(result.choices[0]?.content).toBe("Hi");
    expect(result.error?.shape).toBe("malformed");
  });

  it("JSON that is neither a chunk nor an error → malformed", () => {
    expect(run('data: {"hello":1}\n\n').events).toMatchObject([
      { type: "error", error: { shape: "malformed" } },
    ]);
    expect(run("data: 42\n\n").events).toMatchObject([{ type: "error", error: { shape: "malformed" } }]);
  });
});

describe("status", () => {
  it("a stream truncated at any byte offset before [DONE] is complete is interrupted, never completed", () => {
    const text = STREAM_FIXTURES["stream-text-usage.sse"];
    const bytes = encoder.encode(text);
    // An event still pending at EOF is dispatched (SseDecoder.end), so `data: [DONE]` without its
    // blank line already counts as [DONE]; every shorter prefix must be interrupted.
    const doneComplete = text.indexOf("data: [DONE]") + "data: [DONE]".length;
    let completed = 0;
    for (let offset = 0; offset <= bytes.length; offset++) {
      const result = accumulate(decodeChunks([bytes.subarray(0, offset)]));
      if (offset < doneComplete) {
        expect(result.status, `offset ${offset}`).toBe("interrupted");
      } else {
        expect(result.status, `offset ${offset}`).toBe("completed");
        completed++;
      }
    }
    expect(completed).toBe(bytes.length - doneComplete + 1);
    expect(completed).toBeLessThanOrEqual(3);
  });

  it("EOF without [DONE] is interrupted even when every choice finished", () => {
    const text = STREAM_FIXTURES["stream-text-usage.sse"].replace(DONE, "");
    const { result } = run(text);
    expect(result.sawDone).toBe(false);
    expect(result.choices[0]?.finish_reason).toBe("stop");
    expect(result.status).toBe("interrupted");
  });

  it("[DONE] with a choice lacking finish_reason is interrupted", () => {
    const text = STREAM_FIXTURES["stream-n2.sse"].replace(
      /data: \{"choices":\[\{"finish_reason":"stop"[^\n]*"index":1[^\n]*\n\n/,
      "",
    );
    expect(text).not.toBe(STREAM_FIXTURES["stream-n2.sse"]);
    const { result } = run(text);
    expect(result.sawDone).toBe(true);
    expect(result.choices.map((c) => c.finish_reason)).toEqual(["stop", null]);
    expect(result.status).toBe("interrupted");
  });

  it("[DONE] without any choice is interrupted", () => {
    expect(run(DONE).result.status).toBe("interrupted");
  });

  it("snapshot reflects progress; finish is idempotent and ignores later events", () => {
    const events = run(STREAM_FIXTURES["stream-text-usage.sse"]).events;
    const acc = new CompletionAccumulator();
    acc.push(events[0]!);
    acc.push(events[1]!);
    const early = acc.snapshot();
    expect(early.status).toBe("interrupted");
    expect(early.choices[0]?.content).toBe("I am");
    for (const event of events.slice(2)) acc.push(event);
    expect(early.choices[0]?.content).toBe("I am");
    expect(acc.snapshot().status).toBe("completed");
    const final = acc.finish();
    acc.push({
      type: "error",
      error: { shape: "malformed", status: null, code: "x", message: "x", requestId: null },
    });
    expect(acc.finish()).toBe(final);
    expect(final.status).toBe("completed");
    expect(final.error).toBeNull();
  });
});

describe("tool-call fragment patterns (PROTOCOL §5.1)", () => {
  it('pattern 2: arguments "" first, then the arguments, then an empty function object', () => {
    const text =
      toolChunk(
        [
          {
            function: { name: "get_current_time", arguments: "" },
            index: 0,
            id: "call_deb0063d315441b18b50d8",
            type: "function",
          },
        ],
        { content: null, role: "assistant" },
      ) +
      toolChunk([{ function: { arguments: "{}" }, index: 0, id: "", type: "function" }]) +
      toolChunk([{ function: {}, index: 0, id: "", type: "function" }]) +
      FINISH_TOOL_CALLS +
      DONE;
    const { result } = run(text);
    expect(result.status).toBe("completed");
    expect(result.choices[0]?.tool_calls).toEqual([
      {
        id: "call_deb0063d315441b18b50d8",
        type: "function",
        function: { name: "get_current_time", arguments: "{}" },
      },
    ]);
  });

  it("pattern 3: reasoning first, name:null continuations, two parallel calls", () => {
    const text =
      chunk([
        {
          delta: { content: null, role: "assistant", reasoning_content: "Two cities." },
          index: 0,
          finish_reason: null,
        },
      ]) +
      toolChunk([
        {
          index: 0,
          id: "call_61a2bbd82a8042289f1ff2",
          type: "function",
          function: { name: "get_weather", arguments: "" },
        },
      ]) +
      toolChunk([{ index: 0, id: "", function: { name: null, arguments: '{"city": ' } }]) +
      toolChunk([{ index: 0, id: "", function: { name: null, arguments: '"Beijing"}' } }]) +
      toolChunk([
        {
          index: 1,
          id: "call_7c0d1e2f3a4b5c6d7e8f90",
          type: "function",
          function: { name: "get_weather", arguments: "" },
        },
      ]) +
      toolChunk([{ index: 1, id: "", function: { name: null, arguments: '{"city": "Shanghai"}' } }]) +
      FINISH_TOOL_CALLS +
      DONE;
    const { result } = run(text);
    expect(result.status).toBe("completed");
    expect(result.choices[0]?.reasoning_content).toBe("Two cities.");
    expect(result.choices[0]?.tool_calls).toEqual([
      {
        id: "call_61a2bbd82a8042289f1ff2",
        type: "function",
        function: { name: "get_weather", arguments: '{"city": "Beijing"}' },
      },
      {
        id: "call_7c0d1e2f3a4b5c6d7e8f90",
        type: "function",
        function: { name: "get_weather", arguments: '{"city": "Shanghai"}' },
      },
    ]);
  });

  it("pattern 4: {id, name} without arguments, then {id, arguments} without name", () => {
    const text =
      toolChunk([
        {
          index: 0,
          id: "call_aa11bb22cc33dd44ee55ff",
          type: "function",
          function: { name: "describe_image" },
        },
      ]) +
      toolChunk([{ index: 0, id: "call_aa11bb22cc33dd44ee55ff", function: { arguments: '{"detail":' } }]) +
      toolChunk([{ index: 0, id: "call_aa11bb22cc33dd44ee55ff", function: { arguments: ' "high"}' } }]) +
      FINISH_TOOL_CALLS +
      DONE;
    const { result } = run(text);
    expect(result.choices[0]?.tool_calls).toEqual([
      {
        id: "call_aa11bb22cc33dd44ee55ff",
        type: "function",
        function: { name: "describe_image", arguments: '{"detail": "high"}' },
      },
    ]);
  });

  it("two calls interleaved, index 1 first, several fragments per chunk → merged by index and sorted", () => {
    const text =
      toolChunk([
        { index: 1, id: "call_one", type: "function", function: { name: "b", arguments: '{"x":' } },
      ]) +
      toolChunk([
        { index: 0, id: "call_zero", type: "function", function: { name: "a" } },
        { index: 1, id: "", type: "function", function: { arguments: "1" } },
      ]) +
      toolChunk([{ index: 0, function: { arguments: '{"y":' } }]) +
      toolChunk([
        { index: 1, function: { name: null, arguments: "}" } },
        { index: 0, id: "", function: { name: "", arguments: "2}" } },
      ]) +
      FINISH_TOOL_CALLS +
      DONE;
    const { result } = run(text);
    expect(result.choices[0]?.tool_calls).toEqual([
      { id: "call_zero", type: "function", function: { name: "a", arguments: '{"y":2}' } },
      { id: "call_one", type: "function", function: { name: "b", arguments: '{"x":1}' } },
    ]);
  });

  it("keeps the first non-empty id and name when a continuation repeats different ones", () => {
    const text =
      toolChunk([{ index: 0, id: "", type: "function", function: { name: null, arguments: "" } }]) +
      toolChunk([
        { index: 0, id: "call_first", type: "function", function: { name: "first", arguments: "{" } },
      ]) +
      toolChunk([
        { index: 0, id: "call_second", type: "function", function: { name: "second", arguments: "}" } },
      ]) +
      FINISH_TOOL_CALLS +
      DONE;
    expect(run(text).result.choices[0]?.tool_calls).toEqual([
      { id: "call_first", type: "function", function: { name: "first", arguments: "{}" } },
    ]);
  });

  it("fragments without index continue the latest call; a new id starts a new one", () => {
    const text =
      toolChunk([{ id: "call_a", type: "function", function: { name: "a", arguments: "{" } }]) +
      toolChunk([{ function: { arguments: "}" } }]) +
      toolChunk([{ id: "call_b", type: "function", function: { name: "b", arguments: "[]" } }]) +
      FINISH_TOOL_CALLS +
      DONE;
    expect(
      run(text).result.choices[0]?.tool_calls.map((c) => [c.id, c.function.name, c.function.arguments]),
    ).toEqual([
      ["call_a", "a", "{}"],
      ["call_b", "b", "[]"],
    ]);
  });
});

describe("completionFromAccumulated", () => {
  it("builds the chat.completion body of a tool-call stream", () => {
    const { result } = run(STREAM_FIXTURES["stream-tool-call.sse"]);
    expect(completionFromAccumulated(result)).toEqual({
      id: "chatcmpl-6b9f079d-c440-9fc5-bb6a-963ad8387e02",
      object: "chat.completion",
      created: 1770343950,
      model: "qwen-plus",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: "",
            tool_calls: [
              {
                id: "call_0bdcc155f2534f65a05cb1",
                type: "function",
                function: { name: "get_current_weather", arguments: '{"location": "Hangzhou"}' },
              },
            ],
          },
          finish_reason: "tool_calls",
          logprobs: null,
        },
      ],
      usage: {
        prompt_tokens: 236,
        completion_tokens: 21,
        total_tokens: 257,
        prompt_tokens_details: { cached_tokens: 0 },
      },
      system_fingerprint: null,
    });
  });

  it("includes reasoning_content, audio and logprobs only when streamed", () => {
    const thinking = completionFromAccumulated(run(STREAM_FIXTURES["stream-thinking.sse"]).result);
    expect(thinking.choices[0]?.message).toEqual({
      role: "assistant",
      content: "I am Qwen, a model from Alibaba Cloud.",
      reasoning_content: "The user asks who I am. I should introduce myself briefly.",
    });
    const omni = completionFromAccumulated(run(STREAM_FIXTURES["stream-omni-audio.sse"]).result);
    expect(omni.choices[0]?.message.audio).toEqual({
      id: "audio_a68eca3b-c67e-4666-a72f-73c0b4919860",
      data: "/v8AAAAAAAAAAAAAAAAAAAD+/wEA/v8CAP3/",
      expires_at: 1757647879,
    });
    const logprobs = completionFromAccumulated(run(STREAM_FIXTURES["stream-logprobs.sse"]).result);
    expect(logprobs.choices[0]?.logprobs?.content).toHaveLength(1);
    expect(logprobs.usage).toBeNull();
    const n2 = completionFromAccumulated(run(STREAM_FIXTURES["stream-n2.sse"]).result);
    expect(n2.choices.map((c) => c.message.content)).toEqual([
      "Sunrise over the bay.",
      "Morning light on the water.",
    ]);
  });

  it('gives a call streamed without arguments "{}", which DashScope takes back in a history', () => {
    const { result } = run(
      toolChunk([
        { index: 0, id: "call_1", type: "function", function: { name: "get_time", arguments: "" } },
      ]) +
        FINISH_TOOL_CALLS +
        DONE,
    );
    expect(result.choices[0]!.tool_calls[0]!.function.arguments).toBe("");
    expect(completionFromAccumulated(result).choices[0]!.message.tool_calls).toEqual([
      { id: "call_1", type: "function", function: { name: "get_time", arguments: "{}" } },
    ]);
  });
});

describe("decodeDashScopeStream", () => {
  /** A body that delivers `chunks` one per pull and records whether it was cancelled. */
  function body(chunks: Uint8Array[], onCancel?: (reason: unknown) => void): ReadableStream<Uint8Array> {
    let i = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks[i++];
        if (next === undefined) controller.close();
        else controller.enqueue(next);
      },
      cancel(reason) {
        onCancel?.(reason);
      },
    });
  }

  it("yields the same events as the synchronous decoder, for a real Response body", async () => {
    for (const text of Object.values(STREAM_FIXTURES)) {
      const expected = run(text).events;
      const viaResponse: StreamEvent[] = [];
      for await (const event of decodeDashScopeStream(new Response(text).body!)) viaResponse.push(event);
      expect(viaResponse).toEqual(expected);
      const bytes = encoder.encode(text);
      const small: StreamEvent[] = [];
      const cuts = Array.from({ length: Math.floor(bytes.length / 7) }, (_, k) => (k + 1) * 7);
      for await (const event of decodeDashScopeStream(body(splitAt(bytes, cuts)))) small.push(event);
      expect(small).toEqual(expected);
    }
  });

  it("delivers an event pending at EOF (native frame without final blank line)", async () => {
    const text = STREAM_FIXTURES["stream-midstream-error-native-frame.sse"].trimEnd();
    const events: StreamEvent[] = [];
    for await (const event of decodeDashScopeStream(body([encoder.encode(text)]))) events.push(event);
    expect(events).toMatchObject([{ type: "error", error: { shape: "native", status: 429 } }]);
  });

  it("cancels the body when the consumer stops early", async () => {
    let cancelled = false;
    const bytes = encoder.encode(STREAM_FIXTURES["stream-text-usage.sse"]);
    const stream = body(splitAt(bytes, [200, 400, 600, 800]), () => (cancelled = true));
    for await (const event of decodeDashScopeStream(stream)) {
      expect(event.type).toBe("chunk");
      break;
    }
    expect(cancelled).toBe(true);
  });

  it("cancels the body and throws the reason when the signal aborts", async () => {
    let cancelReason: unknown = null;
    const controller = new AbortController();
    // A body that sends one event and then stalls, like an upstream that stopped producing tokens.
    const stalled = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(encoder.encode(`${STREAM_FIXTURES["stream-text-usage.sse"].split("\n\n")[0]}\n\n`));
      },
      cancel(reason) {
        cancelReason = reason;
      },
    });
    const reason = new Error("client went away");
    const seen: string[] = [];
    const consume = (async () => {
      for await (const event of decodeDashScopeStream(stalled, { signal: controller.signal })) {
        seen.push(event.type);
        controller.abort(reason);
      }
    })();
    await expect(consume).rejects.toBe(reason);
    expect(seen).toEqual(["chunk"]);
    expect(cancelReason).toBe(reason);
  });

  it("refuses to start with an already aborted signal", async () => {
    const controller = new AbortController();
    controller.abort(new Error("gone"));
    const gen = decodeDashScopeStream(new Response("data: [DONE]\n\n").body!, { signal: controller.signal });
    await expect(gen.next()).rejects.toThrow("gone");
  });
});
