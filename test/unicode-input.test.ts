import { describe, expect, it } from "vitest";
import { call, createConversation, newTag, newUser, standInRequests } from "./helpers/api";
import { countUserRows } from "./helpers/rows";
import { parseStrictJson } from "./helpers/strict-json";

/** An unpaired high surrogate: `JSON.stringify` sends it as the escape `\ud83d`, as a buggy client would. */
const LONE = "\ud83d";
const LOW = "\udc00";

type ErrorEnvelope = { error: { code: string; message: string; param?: string | null } };

/** Asserts a 400 `invalid_request` naming `param`, in a body a strict parser accepts. */
async function expectIllFormedRejected(res: Response, param: string) {
  const text = await res.text();
  expect(res.status, text).toBe(400);
  const body = parseStrictJson(text) as ErrorEnvelope;
  expect(body.error.code).toBe("invalid_request");
  expect(body.error.param).toBe(param);
  expect(body.error.message).toMatch(/Unicode/);
}

const tool = (fn: Record<string, unknown>) => ({
  type: "function",
  function: { name: "get_weather", ...fn },
});
const cityParams = (city: Record<string, unknown>) => ({
  type: "object",
  properties: { city: { type: "string", ...city } },
});

/** Every place a generation parameter holds text (used by conversations and turns alike). */
const parameterCases: [string, Record<string, unknown>, string][] = [
  ["a stop string", { stop: ["ok", `end${LOW}`] }, "parameters.stop.1"],
  [
    "a tool's description",
    { tools: [tool({ description: `weather ${LONE}` })] },
    "parameters.tools.0.function.description",
  ],
  [
    "a string deep inside a tool's JSON Schema",
    { tools: [tool({ parameters: cityParams({ description: `the city ${LONE}` }) })] },
    "parameters.tools.0.function.parameters.properties.city.description",
  ],
  [
    "a property name inside a tool's JSON Schema",
    { tools: [tool({ parameters: { type: "object", properties: { [`c${LONE}`]: { type: "string" } } } })] },
    "parameters.tools.0.function.parameters.properties.c\ufffd",
  ],
  [
    "a response_format schema",
    {
      response_format: {
        type: "json_schema",
        json_schema: { name: "answer", schema: { type: "object", title: `A${LONE}` } },
      },
    },
    "parameters.response_format.json_schema.schema.title",
  ],
  [
    "a search site",
    { enable_search: true, search_options: { assigned_site_list: [`example${LONE}.com`] } },
    "parameters.search_options.assigned_site_list.0",
  ],
];

describe("text that is not well-formed Unicode is a 400 naming the field, and nothing is stored", () => {
  describe("POST /v1/conversations", () => {
    it.each<[string, Record<string, unknown>, string]>([
      ["the title", { title: `look ${LONE} here` }, "title"],
      ["the system prompt", { system_prompt: `be ${LOW} brief` }, "system_prompt"],
      ["an unknown field's name", { [`x${LONE}`]: 1 }, "x\ufffd"],
      ...parameterCases.map(
        ([name, parameters, param]) =>
          [name, { parameters }, param] as [string, Record<string, unknown>, string],
      ),
    ])("%s", async (_name, body, param) => {
      const alice = newUser("alice");
      await expectIllFormedRejected(await call(alice, "POST", "/conversations", body), param);
      expect(await countUserRows("conversations", alice)).toBe(0);
    });
  });

  describe("PATCH /v1/conversations/{id}", () => {
    it.each<[string, Record<string, unknown>, string]>([
      ["the title", { title: `look ${LONE} here` }, "title"],
      ["the system prompt", { system_prompt: `be ${LOW} brief` }, "system_prompt"],
      ...parameterCases.map(
        ([name, parameters, param]) =>
          [name, { parameters }, param] as [string, Record<string, unknown>, string],
      ),
    ])("%s", async (_name, body, param) => {
      const alice = newUser("alice");
      const conv = await createConversation(alice, { title: "before" });
      await expectIllFormedRejected(await call(alice, "PATCH", `/conversations/${conv.id}`, body), param);
      const after = (await (await call(alice, "GET", `/conversations/${conv.id}`)).json()) as typeof conv;
      expect(after).toEqual(conv);
    });
  });

  describe("POST /v1/conversations/{id}/messages", () => {
    it.each<[string, Record<string, unknown>, string]>([
      ["string content", { content: `look ${LONE} here`, stream: false }, "content"],
      [
        "a text part",
        {
          content: [
            { type: "text", text: "fine" },
            { type: "text", text: `broken ${LOW}` },
          ],
        },
        "content.1.text",
      ],
      ["a tool result", { role: "tool", tool_call_id: "call_1", content: `22${LONE}C` }, "content"],
      [
        "a tool result's text part",
        { role: "tool", tool_call_id: "call_1", content: [{ type: "text", text: LONE }] },
        "content.0.text",
      ],
      ["a tool call id", { role: "tool", tool_call_id: `call_${LONE}`, content: "22C" }, "tool_call_id"],
      ...parameterCases.map(
        ([name, parameters, param]) =>
          [name, { content: "hi", parameters }, param] as [string, Record<string, unknown>, string],
      ),
    ])("%s", async (_name, body, param) => {
      const alice = newUser("alice");
      const conv = await createConversation(alice);
      await expectIllFormedRejected(
        await call(alice, "POST", `/conversations/${conv.id}/messages`, body),
        param,
      );
      expect(await countUserRows("messages", alice)).toBe(0);
    });
  });

  describe("POST /v1/chat/completions (OpenAI's envelope), never forwarded", () => {
    const user = (tag: string) => ({ role: "user", content: `hi [[stand-in tag=${tag}]]` });
    it.each<[string, (tag: string) => Record<string, unknown>, string]>([
      [
        "a message's content",
        (tag) => ({ messages: [user(tag), { role: "user", content: `x${LONE}` }] }),
        "messages.1.content",
      ],
      [
        "a text part",
        (tag) => ({
          messages: [{ role: "user", content: [{ type: "text", text: `${LOW} [[stand-in tag=${tag}]]` }] }],
        }),
        "messages.0.content.0.text",
      ],
      [
        "an assistant's tool call arguments",
        (tag) => ({
          messages: [
            user(tag),
            {
              role: "assistant",
              content: null,
              tool_calls: [
                { id: "call_1", type: "function", function: { name: "f", arguments: `{"a":"${LONE}"}` } },
              ],
            },
            { role: "tool", tool_call_id: "call_1", content: "ok" },
          ],
        }),
        "messages.1.tool_calls.0.function.arguments",
      ],
      [
        "an assistant's reasoning",
        (tag) => ({
          messages: [user(tag), { role: "assistant", content: "ok", reasoning_content: LONE }, user(tag)],
        }),
        "messages.1.reasoning_content",
      ],
      ["a stop string", (tag) => ({ messages: [user(tag)], stop: LONE }), "stop"],
      [
        "a tool's schema",
        (tag) => ({
          messages: [user(tag)],
          tools: [tool({ parameters: cityParams({ enum: ["ok", LOW] }) })],
        }),
        "tools.0.function.parameters.properties.city.enum.1",
      ],
    ])("%s", async (_name, build, param) => {
      const alice = newUser("alice");
      const tag = newTag();
      const res = await call(alice, "POST", "/chat/completions", { model: "qwen-plus", ...build(tag) });
      const text = await res.text();
      expect(res.status, text).toBe(400);
      const body = parseStrictJson(text) as ErrorEnvelope;
      expect(body.error.param).toBe(param);
      expect(body.error.message).toMatch(/Unicode/);
      expect(await standInRequests(tag)).toHaveLength(0);
    });
  });

  it("POST /v1/api-keys: the key's name", async () => {
    const alice = newUser("alice");
    await expectIllFormedRejected(await call(alice, "POST", "/api-keys", { name: `ci ${LONE}` }), "name");
    expect(await countUserRows("api_keys", alice)).toBe(0);
  });

  it("a well-formed surrogate pair (an emoji) is ordinary text", async () => {
    const alice = newUser("alice");
    const res = await call(alice, "POST", "/conversations", { title: "look 😀 here" });
    expect(res.status).toBe(201);
    expect(((await res.json()) as { title: string }).title).toBe("look 😀 here");
  });
});
