import { describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, MAX_PARAMETERS_BYTES } from "../src/dashscope/schema";
import { call, createConversation, expectError, newTag, newUser, standInRequests } from "./helpers/api";
import { countUserRows } from "./helpers/rows";
import { dbOf } from "./helpers/shards";

/** `{"a":{"a":…1…}}` nested `levels` deep, as text (6 bytes a level: 50,000 levels fit the body limit). */
const nested = (levels: number) => `${'{"a":'.repeat(levels)}1${"}".repeat(levels)}`;

/** A turn or conversation body whose tool schema nests `levels` objects below `properties`. */
const toolParameters = (levels: number) =>
  `{"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":${nested(levels)}}}}]}`;
const responseFormat = (levels: number) =>
  `{"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":${nested(levels)}}}}`;

const DEEP = 50_000;

/** Levels of a body `{"parameters": {"tools": [ {"function": {"parameters": {"properties": …` above `nested`. */
const TOOL_PROPERTIES_DEPTH = 6;

describe("deeply nested JSON is a clear 400 wherever parameters enter", () => {
  it.each([
    ["a tool schema", toolParameters(DEEP), "parameters.tools.0.function.parameters.properties"],
    ["a response_format schema", responseFormat(DEEP), "parameters.response_format.json_schema.schema"],
  ])("%s on a turn: 400, nothing stored", async (_name, parameters, paramPrefix) => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(
      alice,
      "POST",
      `/conversations/${conv.id}/messages`,
      `{"content":"hi","parameters":${parameters}}`,
    );
    const error = await expectError(res, 400, "invalid_request");
    expect(error.param).toMatch(new RegExp(`^${paramPrefix.replace(/\./g, "\\.")}(\\.a)+$`));
    expect(error.message).toContain(String(MAX_JSON_DEPTH));
    expect(await countUserRows("messages", alice)).toBe(0);
  });

  it.each([
    ["a tool schema", toolParameters(DEEP)],
    ["a response_format schema", responseFormat(DEEP)],
  ])(
    "%s as a conversation's defaults: 400 on create and on PATCH, nothing stored",
    async (_name, parameters) => {
      const alice = newUser("alice");
      await expectError(
        await call(alice, "POST", "/conversations", `{"parameters":${parameters}}`),
        400,
        "invalid_request",
      );
      expect(await countUserRows("conversations", alice)).toBe(0);
      const conv = await createConversation(alice);
      await expectError(
        await call(alice, "PATCH", `/conversations/${conv.id}`, `{"parameters":${parameters}}`),
        400,
        "invalid_request",
      );
      expect(await (await call(alice, "GET", `/conversations/${conv.id}`)).json()).toEqual(conv);
    },
  );

  it("on /v1/chat/completions: 400 in OpenAI's envelope, never forwarded", async () => {
    const alice = newUser("alice");
    const tag = newTag();
    const tools = toolParameters(DEEP).slice(1, -1); // `"tools":[…]`
    const res = await call(
      alice,
      "POST",
      "/chat/completions",
      `{"model":"qwen-plus","messages":[{"role":"user","content":"hi [[stand-in tag=${tag}]]"}],${tools}}`,
    );
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { param: string; message: string; type: string } };
    expect(body.error.type).toBe("invalid_request_error");
    expect(body.error.param).toMatch(/^tools\.0\.function\.parameters\.properties(\.a)+$/);
    expect(await standInRequests(tag)).toHaveLength(0);
  });

  it("deep JSON in any other field is refused before anything walks it", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(
      alice,
      "POST",
      `/conversations/${conv.id}/messages`,
      `{"content":"hi","client_message_id":"a","x":${nested(DEEP)}}`,
    );
    const error = await expectError(res, 400, "invalid_request");
    expect(error.param).toMatch(/^x(\.a)+$/);
    await expectError(
      await call(alice, "POST", "/api-keys", `{"name":${nested(DEEP)}}`),
      400,
      "invalid_request",
    );
    expect(await countUserRows("api_keys", alice)).toBe(0);
  });

  it("defaults nested to the limit are accepted and every turn of the conversation works", async () => {
    const alice = newUser("alice");
    const deepest = MAX_JSON_DEPTH - TOOL_PROPERTIES_DEPTH;
    await expectError(
      await call(alice, "POST", "/conversations", `{"parameters":${toolParameters(deepest + 1)}}`),
      400,
      "invalid_request",
    );
    const res = await call(alice, "POST", "/conversations", `{"parameters":${toolParameters(deepest)}}`);
    expect(res.status).toBe(201);
    const conv = (await res.json()) as { id: string };
    for (const content of ["hi [[stand-in tokens=2]]", "again [[stand-in tokens=2]]"]) {
      const turn = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
        content,
        stream: false,
      });
      expect(turn.status).toBe(200);
    }
    // A turn's own parameters obey the same limit as the stored defaults.
    const conv2 = await createConversation(alice);
    const over = await call(
      alice,
      "POST",
      `/conversations/${conv2.id}/messages`,
      `{"content":"hi","parameters":${toolParameters(deepest + 1)}}`,
    );
    await expectError(over, 400, "invalid_request");
  });

  it("parameters larger than the size limit are refused on turns, defaults and chat/completions", async () => {
    const alice = newUser("alice");
    const parameters = { stop: "x".repeat(MAX_PARAMETERS_BYTES) };
    await expectError(
      await call(alice, "POST", "/conversations", { parameters }),
      400,
      "invalid_request",
      "parameters",
    );
    const conv = await createConversation(alice);
    await expectError(
      await call(alice, "PATCH", `/conversations/${conv.id}`, { parameters }),
      400,
      "invalid_request",
      "parameters",
    );
    await expectError(
      await call(alice, "POST", `/conversations/${conv.id}/messages`, { content: "hi", parameters }),
      400,
      "invalid_request",
      "parameters",
    );
    const res = await call(alice, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: "hi" }],
      ...parameters,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { message: string } }).error.message).toContain(
      String(MAX_PARAMETERS_BYTES),
    );
    expect(await countUserRows("messages", alice)).toBe(0);
  });

  it("a conversation stored with unusable defaults before these limits gets a 400 naming them, not a failed answer", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await dbOf(alice)
      .prepare("UPDATE conversations SET params_json = ? WHERE id = ?")
      .bind(toolParameters(DEEP), conv.id)
      .run();
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "hi",
      stream: false,
    });
    const error = await expectError(res, 400, "invalid_request");
    expect(error.param).toMatch(/^parameters\.tools/);
    expect(error.message).toMatch(/conversation/i);
    expect(await countUserRows("messages", alice)).toBe(0);
  });
});

describe("conversation defaults are held to the rules a turn without overrides meets", () => {
  it.each([
    [{ enable_thinking: false, thinking_budget: 100 }, "parameters.thinking_budget"],
    [{ tool_choice: "required" }, "parameters.tool_choice"],
    [{ search_options: { forced_search: true } }, "parameters.search_options"],
    [{ audio: { voice: "Cherry", format: "wav" } }, "parameters.audio"],
  ])("%j is a 400 naming the parameter, on create and PATCH", async (parameters, param) => {
    const alice = newUser("alice");
    await expectError(
      await call(alice, "POST", "/conversations", { parameters }),
      400,
      "invalid_request",
      param,
    );
    expect(await countUserRows("conversations", alice)).toBe(0);
    const conv = await createConversation(alice);
    await expectError(
      await call(alice, "PATCH", `/conversations/${conv.id}`, { parameters }),
      400,
      "invalid_request",
      param,
    );
  });

  it("rules that depend on each turn's messages are left to the turn", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice, {
      parameters: { response_format: { type: "json_object" } },
    });
    const turn = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "answer in json [[stand-in tokens=2]]",
      stream: false,
    });
    expect(turn.status).toBe(200);
  });
});
