import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { MAX_CONTENT_PARTS, MAX_OUTPUT_TOKENS, MAX_TOOLS } from "../src/dashscope/schema";
import { call, createConversation, expectError, newTag, newUser, standInRequests } from "./helpers/api";
import { countUserRows } from "./helpers/rows";

const tool = (i: number) => ({ type: "function", function: { name: `tool_${i}` } });
const tools = (n: number) => Array.from({ length: n }, (_, i) => tool(i));

async function turn(userId: string, body: Record<string, unknown>) {
  const conv = await createConversation(userId);
  const res = await call(userId, "POST", `/conversations/${conv.id}/messages`, body);
  return { res, conv };
}

describe("control characters in labels are a 400, nothing stored", () => {
  it.each([
    ["a NUL", "team\u0000chat"],
    ["an escape", "team\u001b[31m"],
    ["a line feed", "team\nchat"],
    ["a DEL", "team\u007f"],
  ])("a title with %s", async (_name, title) => {
    const alice = newUser("alice");
    await expectError(
      await call(alice, "POST", "/conversations", { title }),
      400,
      "invalid_request",
      "title",
    );
    expect(await countUserRows("conversations", alice)).toBe(0);
    const conv = await createConversation(alice, { title: "ok" });
    await expectError(
      await call(alice, "PATCH", `/conversations/${conv.id}`, { title }),
      400,
      "invalid_request",
      "title",
    );
  });

  it("an API key name with a NUL or a line feed", async () => {
    const alice = newUser("alice");
    for (const name of ["ci\u0000bot", "ci\nbot"]) {
      await expectError(await call(alice, "POST", "/api-keys", { name }), 400, "invalid_request", "name");
    }
    expect(await countUserRows("api_keys", alice)).toBe(0);
  });

  it("a system prompt may have line breaks and tabs, but no NUL", async () => {
    const alice = newUser("alice");
    await expectError(
      await call(alice, "POST", "/conversations", { system_prompt: "be\u0000brief" }),
      400,
      "invalid_request",
      "system_prompt",
    );
    expect((await call(alice, "POST", "/conversations", { system_prompt: "be\n\tbrief" })).status).toBe(201);
  });
});

describe("content parts and tools are capped", () => {
  it(`more than ${MAX_CONTENT_PARTS} content parts in a turn is a 400 naming content`, async () => {
    const alice = newUser("alice");
    const parts = Array.from({ length: MAX_CONTENT_PARTS + 1 }, () => ({ type: "text", text: "a" }));
    const { res } = await turn(alice, { content: parts });
    const error = await expectError(res, 400, "invalid_request", "content");
    expect(error.message).toContain(String(MAX_CONTENT_PARTS));
    expect(await countUserRows("messages", alice)).toBe(0);
  });

  it(`more than ${MAX_TOOLS} tools is a 400 naming tools, in turns, defaults and chat/completions`, async () => {
    const alice = newUser("alice");
    const parameters = { tools: tools(MAX_TOOLS + 1) };
    const { res } = await turn(alice, { content: "hi", parameters });
    await expectError(res, 400, "invalid_request", "parameters.tools");
    await expectError(
      await call(alice, "POST", "/conversations", { parameters }),
      400,
      "invalid_request",
      "parameters.tools",
    );
    const completion = await call(alice, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: "hi" }],
      ...parameters,
    });
    expect(completion.status).toBe(400);
    expect(((await completion.json()) as { error: { param: string } }).error.param).toBe("tools");
    const ok = await call(alice, "POST", "/conversations", { parameters: { tools: tools(MAX_TOOLS) } });
    expect(ok.status).toBe(201);
  });
});

describe("media URLs that point at non-public addresses are a 400 and never forwarded", () => {
  const privateUrls = [
    "http://127.0.0.1/cat.png",
    "http://127.1.2.3:8080/cat.png",
    "http://[::1]/cat.png",
    "http://10.0.0.5/cat.png",
    "http://172.16.0.1/cat.png",
    "http://172.31.255.255/cat.png",
    "http://192.168.1.1/cat.png",
    "http://169.254.169.254/latest/meta-data/",
    "http://[fd00::1]/cat.png",
    "http://[fe80::1]/cat.png",
    "http://0.0.0.0/cat.png",
    "http://localhost/cat.png",
    "http://LOCALHOST./cat.png",
    "http://api.localhost/cat.png",
    "http://intranet/cat.png",
    "http://[::ffff:127.0.0.1]/cat.png",
    "http://[::ffff:10.0.0.1]/cat.png",
    "http://2130706433/cat.png",
    "http://0x7f000001/cat.png",
    "http://0177.0.0.1/cat.png",
    "http://100.64.0.1/cat.png",
    "https://user:pw@127.0.0.1/cat.png",
  ];

  it.each(privateUrls)("%s in an image part of a turn", async (url) => {
    const alice = newUser("alice");
    const tag = newTag();
    const { res } = await turn(alice, {
      content: [
        { type: "text", text: `what is this? [[stand-in tag=${tag}]]` },
        { type: "image_url", image_url: { url } },
      ],
    });
    const error = await expectError(res, 400, "invalid_request", "content.1.image_url.url");
    expect(error.message).toMatch(/public/);
    expect(await countUserRows("messages", alice)).toBe(0);
    expect(await standInRequests(tag)).toHaveLength(0);
  });

  it.each([
    [
      { type: "video", video: ["https://example.com/1.jpg", "http://192.168.0.2/2.jpg"] },
      "content.0.video.1",
    ],
    [{ type: "video_url", video_url: { url: "http://10.1.1.1/clip.mp4" } }, "content.0.video_url.url"],
    [
      { type: "input_audio", input_audio: { data: "http://[::1]:9000/a.wav", format: "wav" } },
      "content.0.input_audio.data",
    ],
  ])("every media part: %j", async (part, param) => {
    const alice = newUser("alice");
    const { res } = await turn(alice, { content: [part] });
    await expectError(res, 400, "invalid_request", param);
  });

  it("on /v1/chat/completions too", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const res = await call(alice, "POST", "/chat/completions", {
      model: "qwen-vl-plus",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: `[[stand-in tag=${tag}]]` },
            { type: "image_url", image_url: { url: "http://169.254.169.254/" } },
          ],
        },
      ],
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { param: string } }).error.param).toBe(
      "messages.0.content.1.image_url.url",
    );
    expect(await standInRequests(tag)).toHaveLength(0);
  });

  it("public hosts and addresses still pass", async () => {
    const alice = newUser("alice");
    const { res } = await turn(alice, {
      // A model that reads images (qwen-plus, the default, refuses them).
      model: "qwen3-vl-plus",
      content: [
        { type: "text", text: "what is this? [[stand-in tokens=2]]" },
        { type: "image_url", image_url: { url: "https://example.com/cat.png" } },
        { type: "image_url", image_url: { url: "http://93.184.216.34/cat.png" } },
      ],
      stream: false,
    });
    expect(res.status).toBe(200);
  });
});

describe("absurd numbers are a 400 naming the parameter, not a quota or upstream error", () => {
  it.each([
    ["max_tokens", { max_tokens: 1e9 }],
    ["thinking_budget", { enable_thinking: true, thinking_budget: 1e9 }],
    ["max_input_tokens", { max_input_tokens: 1e12 }],
    ["top_k", { top_k: 1e12 }],
  ])("%s on a turn, on defaults and on chat/completions", async (name, parameters) => {
    const alice = newUser("alice");
    const { res } = await turn(alice, { content: "hi", parameters });
    const error = await expectError(res, 400, "invalid_request", `parameters.${name}`);
    expect(error.message).toMatch(/at most|less than/);
    await expectError(
      await call(alice, "POST", "/conversations", { parameters }),
      400,
      "invalid_request",
      `parameters.${name}`,
    );
    const completion = await call(alice, "POST", "/chat/completions", {
      model: "qwen-plus",
      stream: true,
      messages: [{ role: "user", content: "hi" }],
      ...parameters,
    });
    expect(completion.status).toBe(400);
    expect(((await completion.json()) as { error: { param: string } }).error.param).toBe(name);
    expect(await countUserRows("messages", alice)).toBe(0);
  });

  it("max_tokens that fills the model's whole context window names max_tokens", async () => {
    const alice = newUser("alice");
    const { res } = await turn(alice, {
      content: "hi",
      model: "qwen-max",
      parameters: { max_tokens: 40_000 },
    });
    await expectError(res, 400, "invalid_request", "parameters.max_tokens");
    expect(await countUserRows("messages", alice)).toBe(0);
  });

  it("a video's fps", async () => {
    const alice = newUser("alice");
    const { res } = await turn(alice, {
      content: [{ type: "video_url", video_url: { url: "https://example.com/a.mp4", fps: 1e9 } }],
    });
    await expectError(res, 400, "invalid_request", "content.0.video_url.fps");
  });

  it(`max_tokens up to ${MAX_OUTPUT_TOKENS} is accepted`, async () => {
    const alice = newUser("alice");
    const { res } = await turn(alice, {
      content: "hi [[stand-in tokens=2]]",
      model: "qwen-flash",
      parameters: { max_tokens: MAX_OUTPUT_TOKENS },
      stream: false,
    });
    expect(res.status).toBe(200);
  });
});

describe("a value of the wrong type says which type is expected", () => {
  it.each([
    ["a turn's model", "turn", { content: "hi", model: 5 }, "model", "a string"],
    ["a text part", "turn", { content: [{ type: "text", text: 5 }] }, "content.0.text", "a string"],
    ["a client message id", "turn", { content: "hi", client_message_id: 7 }, "client_message_id", "a string"],
    ["a title", "conversation", { title: 5 }, "title", "a string"],
    [
      "a parameter",
      "conversation",
      { parameters: { max_tokens: "many" } },
      "parameters.max_tokens",
      "a number",
    ],
    ["a key name", "key", { name: 5 }, "name", "a string"],
  ])("%s", async (_name, route, body, param, expected) => {
    const alice = newUser("alice");
    const res =
      route === "turn"
        ? (await turn(alice, body)).res
        : await call(alice, "POST", route === "key" ? "/api-keys" : "/conversations", body);
    const error = await expectError(res, 400, "invalid_request", param);
    expect(error.message).not.toMatch(/required/);
    expect(error.message).toContain(`must be ${expected}`);
  });

  it("a missing field still says it is required", async () => {
    const alice = newUser("alice");
    const res = await call(alice, "POST", "/chat/completions", {
      messages: [{ role: "user", content: "hi" }],
    });
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
      /"model" is required/,
    );
  });
});

describe("a blocked user", () => {
  it("cannot create API keys (403, as their turns are refused)", async () => {
    const alice = newUser("alice");
    const blocked = await exports.default.fetch(`http://localhost/admin/v1/users/${alice}/block`, {
      method: "POST",
      headers: { authorization: `Bearer ${env.ADMIN_TOKEN}` },
    });
    expect(blocked.status).toBe(200);
    await expectError(await call(alice, "POST", "/api-keys", { name: "ci" }), 403, "forbidden");
    expect(await countUserRows("api_keys", alice)).toBe(0);
  });
});
