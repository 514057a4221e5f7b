import { exports } from "cloudflare:workers";
import OpenAI from "openai";
import type { ChatCompletionMessageParam, ChatCompletionTool } from "openai/resources/chat/completions";
import { describe, expect, it } from "vitest";
import { newTag, newUser } from "./helpers/api";
import { tokenFor } from "./helpers/auth";

/** The official SDK pointed at edge-chat: base URL plus the caller's token, requests served by the Worker in workerd. */
async function sdkFor(user: string): Promise<OpenAI> {
  return new OpenAI({
    baseURL: "http://localhost/v1",
    apiKey: await tokenFor(user),
    // Failures must surface here, not be retried by the SDK.
    maxRetries: 0,
    fetch: (url, init) => exports.default.fetch(url as string, init as RequestInit),
  });
}

const weatherTool: ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { location: { type: "string" } }, required: ["location"] },
  },
};

describe("the openai SDK against edge-chat", () => {
  it("completes a non-streamed chat", async () => {
    const client = await sdkFor(newUser("sdk"));
    const completion = await client.chat.completions.create({
      model: "qwen-plus",
      messages: [{ role: "user", content: `Hello [[stand-in tokens=5 tag=${newTag()}]]` }],
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]!.finish_reason).toBe("stop");
    expect(completion.choices[0]!.message.content!.split(" ")).toHaveLength(5);
    expect(completion.usage!.completion_tokens).toBe(5);
  });

  it("streams a chat, with usage when asked", async () => {
    const client = await sdkFor(newUser("sdk"));
    const stream = await client.chat.completions.create({
      model: "qwen-plus",
      messages: [{ role: "user", content: `Hello [[stand-in tokens=6 tag=${newTag()}]]` }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish ??= chunk.choices[0]?.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text.split(" ")).toHaveLength(6);
    expect(finish).toBe("stop");
    expect(usage?.completion_tokens).toBe(6);
  });

  it("streams reasoning_content alongside the answer", async () => {
    const client = await sdkFor(newUser("sdk"));
    const stream = await client.chat.completions.create({
      model: "qwen-plus",
      messages: [{ role: "user", content: `Think [[stand-in reasoning=3 tokens=2 tag=${newTag()}]]` }],
      stream: true,
      enable_thinking: true,
    } as OpenAI.ChatCompletionCreateParamsStreaming);
    let reasoning = "";
    let content = "";
    for await (const chunk of stream) {
      const delta = chunk.choices[0]?.delta as
        | { content?: string | null; reasoning_content?: string | null }
        | undefined;
      reasoning += delta?.reasoning_content ?? "";
      content += delta?.content ?? "";
    }
    expect(reasoning.split(" ")).toHaveLength(3);
    expect(content.split(" ")).toHaveLength(2);
  });

  it("does a tool-call round trip: assistant tool_calls, then a tool message", async () => {
    const client = await sdkFor(newUser("sdk"));
    const tag = newTag();
    const messages: ChatCompletionMessageParam[] = [
      { role: "user", content: `Weather in Hangzhou? [[stand-in tool_call tag=${tag}]]` },
    ];
    const first = await client.chat.completions.create({
      model: "qwen-plus",
      messages,
      tools: [weatherTool],
    });
    const call = first.choices[0]!.message.tool_calls?.[0];
    expect(first.choices[0]!.finish_reason).toBe("tool_calls");
    expect(call?.type).toBe("function");
    if (call?.type !== "function") throw new Error("no function call");
    expect(call.function.name).toBe("get_weather");
    const args = JSON.parse(call.function.arguments) as { location: string };
    expect(typeof args.location).toBe("string");

    // The assistant message goes back as the SDK returned it, as applications do.
    messages.push(first.choices[0]!.message);
    messages.push({
      role: "tool",
      tool_call_id: call.id,
      content: JSON.stringify({ location: args.location, celsius: 21 }),
    });
    messages.push({ role: "user", content: `Thanks [[stand-in echo tag=${tag}]]` });
    const second = await client.chat.completions.create({
      model: "qwen-plus",
      messages,
      tools: [weatherTool],
    });
    expect(second.choices[0]!.finish_reason).toBe("stop");
    // The stand-in echoes the messages it received: the tool result reached the model.
    const echoed = JSON.parse(second.choices[0]!.message.content!) as { role: string; content: string }[];
    expect(echoed.map((m) => m.role)).toEqual(["user", "assistant", "tool", "user"]);
    expect(JSON.parse(echoed[2]!.content)).toEqual({ location: args.location, celsius: 21 });
  });

  it("returns reasoning_content and usage for a non-streamed thinking call", async () => {
    const client = await sdkFor(newUser("sdk"));
    const completion = await client.chat.completions.create({
      model: "qwen-plus",
      messages: [{ role: "user", content: `Think [[stand-in reasoning=3 tokens=2 tag=${newTag()}]]` }],
      enable_thinking: true,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(completion.object).toBe("chat.completion");
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe("stop");
    const message = choice.message as typeof choice.message & { reasoning_content?: string };
    expect(message.reasoning_content?.split(" ")).toHaveLength(3);
    expect(message.content?.split(" ")).toHaveLength(2);
    expect(completion.usage).toMatchObject({
      completion_tokens: 5,
      completion_tokens_details: { reasoning_tokens: 3 },
    });
  });

  it("returns complete tool calls for a non-streamed thinking call", async () => {
    const client = await sdkFor(newUser("sdk"));
    const completion = await client.chat.completions.create({
      model: "qwen-plus",
      messages: [
        { role: "user", content: `Weather? [[stand-in tool_call fragments=pattern2 tag=${newTag()}]]` },
      ],
      tools: [weatherTool],
      enable_thinking: true,
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect((choice.message as { reasoning_content?: string }).reasoning_content).toBeTruthy();
    const call = choice.message.tool_calls?.[0];
    if (call?.type !== "function") throw new Error("no function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toHaveProperty("location");
  });

  it("raises an APIError when a non-streamed thinking call fails mid-answer", async () => {
    const client = await sdkFor(newUser("sdk"));
    const error = await client.chat.completions
      .create({
        model: "qwen-plus",
        messages: [{ role: "user", content: `x [[stand-in tokens=8 midstream=openai tag=${newTag()}]]` }],
        enable_thinking: true,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming)
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("content_filtered");
    expect((error as Error).message).toMatch(/moderation/);
  });

  it("accumulates streamed tool-call fragments with the SDK's stream helper", async () => {
    const client = await sdkFor(newUser("sdk"));
    const messages: ChatCompletionMessageParam[] = [
      { role: "user", content: `Weather? [[stand-in tool_call fragments=pattern3 tag=${newTag()}]]` },
    ];
    const stream = client.chat.completions.stream({ model: "qwen-plus", messages, tools: [weatherTool] });
    const message = await stream.finalMessage();
    const call = message.tool_calls?.[0];
    if (call?.type !== "function") throw new Error("no function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toHaveProperty("location");

    // The helper's accumulated message goes back as is, then the tool's result.
    messages.push(message, { role: "tool", tool_call_id: call.id, content: "21 degrees" });
    const answer = await client.chat.completions
      .stream({
        model: "qwen-plus",
        messages: [...messages, { role: "user", content: `So? [[stand-in tokens=3 tag=${newTag()}]]` }],
        tools: [weatherTool],
      })
      .finalContent();
    expect(answer?.split(" ")).toHaveLength(3);
  });

  it("raises RateLimitError (an APIError) for an upstream 429, with Retry-After", async () => {
    const client = await sdkFor(newUser("sdk"));
    const error = await client.chat.completions
      .create({
        model: "qwen-plus",
        messages: [
          { role: "user", content: `x [[stand-in error=limit_requests retry_after=30 tag=${newTag()}]]` },
        ],
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    const apiError = error as InstanceType<typeof OpenAI.RateLimitError>;
    expect(apiError.status).toBe(429);
    expect(apiError.code).toBe("rate_limited");
    expect(apiError.type).toBe("rate_limit_error");
    expect(apiError.headers.get("retry-after")).toBe("30");
  });

  it("raises an APIError for a content-filter error before the answer", async () => {
    const client = await sdkFor(newUser("sdk"));
    const error = await client.chat.completions
      .create({
        model: "qwen-plus",
        messages: [{ role: "user", content: `x [[stand-in error=data_inspection_failed tag=${newTag()}]]` }],
        stream: true,
      })
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(error).toBeInstanceOf(OpenAI.UnprocessableEntityError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("content_filtered");
  });

  it("raises an APIError for a content-filter error in the middle of a streamed answer", async () => {
    const client = await sdkFor(newUser("sdk"));
    const stream = await client.chat.completions.create({
      model: "qwen-plus",
      messages: [
        { role: "user", content: `x [[stand-in tokens=8 midstream=openai after=3 tag=${newTag()}]]` },
      ],
      stream: true,
    });
    let text = "";
    const error = await (async () => {
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    })().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("content_filtered");
    expect((error as Error).message).toMatch(/moderation/);
    expect(text.split(" ")).toHaveLength(3);
  });

  it("raises an APIError when the upstream connection drops mid-answer", async () => {
    const client = await sdkFor(newUser("sdk"));
    const stream = await client.chat.completions.create({
      model: "qwen-plus",
      messages: [{ role: "user", content: `x [[stand-in tokens=8 disconnect=2 tag=${newTag()}]]` }],
      stream: true,
    });
    const error = await (async () => {
      for await (const _chunk of stream) {
        // drain
      }
    })().then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("upstream_error");
  });

  it("raises AuthenticationError for a bad token, and lists models with a good one", async () => {
    const bad = new OpenAI({
      baseURL: "http://localhost/v1",
      apiKey: "not-a-token",
      maxRetries: 0,
      fetch: (url, init) => exports.default.fetch(url as string, init as RequestInit),
    });
    await expect(bad.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);

    const client = await sdkFor(newUser("sdk"));
    const ids: string[] = [];
    for await (const model of client.models.list()) ids.push(model.id);
    expect(ids).toContain("qwen-plus");
    expect((await client.models.retrieve("qwen-max")).owned_by).toBe("alibaba-cloud");
  });
});
