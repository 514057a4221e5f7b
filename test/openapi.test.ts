import { exports } from "cloudflare:workers";
import { Validator } from "@seriousme/openapi-schema-validator";
// The validator reads its meta-schema from disk, which workerd cannot; the bundler inlines it instead.
import openApi31MetaSchema from "@seriousme/openapi-schema-validator/schemas/v3.1/schema.json";
import type { Options, ValidateFunction } from "ajv";
import Ajv2020 from "ajv/dist/2020.js";
import addFormatsModule, { type FormatsPlugin } from "ajv-formats";
import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../src/app";
import { call, createConversation, endMessage, newTag, newUser, readSse, startedData } from "./helpers/api";
import type { TurnResult } from "./helpers/api-types";
import { filePart, jpegOf, upload, VISION_MODEL } from "./helpers/images";

/** The parts of an OpenAPI 3.1 media type these tests read (`x-sse-events`: see src/openapi/document.ts). */
type MediaType = {
  schema?: { $ref?: string };
  "x-sse-events"?: Record<string, { $ref?: string; oneOf?: unknown[] }>;
};
type Header = { schema?: { type?: string } };
type Operation = {
  security?: unknown[];
  responses: Record<string, { content?: Record<string, MediaType>; headers?: Record<string, Header> }>;
};
/** The parts of the document these tests read; the rest is carried along for the validators. */
type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: {
    schemas: Record<
      string,
      {
        properties?: Record<string, unknown>;
        required?: string[];
        oneOf?: { $ref: string }[];
        discriminator?: { propertyName: string; mapping?: Record<string, string> };
      }
    >;
  };
  [key: string]: unknown;
};

/** The `type` content of the 200 response of `method path` in `d`; throws if the document has none. */
function okContent(d: Doc, method: string, path: string, type: string): MediaType {
  const content = d.paths[path]?.[method]?.responses["200"]?.content?.[type];
  if (!content) throw new Error(`no 200 ${type} response for ${method} ${path}`);
  return content;
}

const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/** Every route of `../shared/API.md` ("Resources"), as OpenAPI paths. */
const CONTRACT_ROUTES = [
  "GET /healthz",
  "POST /v1/conversations",
  "GET /v1/conversations",
  "GET /v1/conversations/{id}",
  "PATCH /v1/conversations/{id}",
  "DELETE /v1/conversations/{id}",
  "GET /v1/conversations/{id}/messages",
  "POST /v1/conversations/{id}/messages",
  "GET /v1/messages/{id}",
  "GET /v1/messages/{id}/events",
  "POST /v1/messages/{id}/stop",
  "GET /v1/search",
  "GET /v1/usage",
  "GET /v1/conversations/{id}/export",
  "GET /v1/account/export",
  "GET /v1/sync",
  "POST /v1/chat/completions",
  "GET /v1/models",
];

// ajv-formats is CommonJS: depending on the bundler's interop, its default import is the plugin or a
// namespace object holding it as `default`.
const formatsImport: FormatsPlugin | { default: FormatsPlugin } = addFormatsModule;
const addFormats = "default" in formatsImport ? formatsImport.default : formatsImport;

/** @seriousme/openapi-schema-validator's instance fields that its index.d.ts leaves out (see its index.js). */
interface ValidatorInternals {
  ajvOptions: Options;
  ajvValidators: Record<string, ValidateFunction>;
}

function newAjv() {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  return ajv;
}

/** An OpenAPI 3.1 validator whose meta-schema is compiled from the inlined copy (same options as its own). */
function openApiValidator(): Validator {
  const validator = new Validator();
  const internals = validator as unknown as ValidatorInternals;
  const ajv = new Ajv2020(internals.ajvOptions);
  addFormats(ajv);
  ajv.addFormat("media-range", true);
  internals.ajvValidators["3.1"] = ajv.compile(openApi31MetaSchema);
  return validator;
}

/** A validator for one component of `doc`, with `$ref`s between components resolved inside the document. */
function componentValidator(ajv: Ajv2020, name: string) {
  const validate = ajv.getSchema(`openapi#/components/schemas/${name}`);
  if (!validate) throw new Error(`no component ${name}`);
  return (value: unknown) => {
    const ok = validate(value) as boolean;
    return { ok, errors: validate.errors };
  };
}

/** Keys of a real response object that its component does not document (drift the other way round). */
function undocumented(doc: Doc, name: string, value: object): string[] {
  const properties = doc.components.schemas[name]?.properties ?? {};
  return Object.keys(value).filter((key) => !(key in properties));
}

let doc: Doc;
let ajv: Ajv2020;

beforeAll(async () => {
  const res = await exports.default.fetch("http://localhost/openapi.json");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^application\/json/);
  doc = (await res.json()) as Doc;
  ajv = newAjv();
  ajv.addSchema(doc, "openapi");
});

describe("/openapi.json", () => {
  it("is a valid OpenAPI 3.1 document whose $refs all resolve, served without auth", async () => {
    expect(doc.openapi).toMatch(/^3\.1\./);
    const result = await openApiValidator().validate(structuredClone(doc));
    expect(result.errors ?? null).toBeNull();
    expect(result.valid).toBe(true);
  });

  it("the validator used here does reject a broken document", async () => {
    const broken = structuredClone(doc);
    okContent(broken, "get", "/v1/models", "application/json").schema = {
      $ref: "#/components/schemas/Nope",
    };
    expect((await openApiValidator().validate(broken)).valid).toBe(false);
    const noInfo = structuredClone(doc);
    delete noInfo.info;
    expect((await openApiValidator().validate(noInfo)).valid).toBe(false);
  });

  it("has an operation for every route the Worker registers", () => {
    const registered = app.routes
      .filter((r) => r.method !== "ALL")
      .map((r) => `${r.method} ${r.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, "{$1}")}`);
    expect(registered.length).toBeGreaterThan(10);
    const missing = registered.filter((route) => {
      const [method, path] = route.split(" ") as [string, string];
      return !doc.paths[path]?.[method.toLowerCase()];
    });
    expect(missing).toEqual([]);
  });

  it("has an operation for every route of the HTTP contract", () => {
    const missing = CONTRACT_ROUTES.filter((route) => {
      const [method, path] = route.split(" ") as [string, string];
      return !doc.paths[path]?.[method.toLowerCase()];
    });
    expect(missing).toEqual([]);
  });

  it("documents errors on every authenticated operation, in the envelope the route really uses", () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!op || (Array.isArray(op.security) && op.security.length === 0)) continue;
        const unauthorized = op.responses["401"]?.content?.["application/json"]?.schema?.$ref;
        const openAiRoute = path === "/v1/chat/completions" || path.startsWith("/v1/models");
        expect(unauthorized, `${method} ${path}`).toBe(
          `#/components/schemas/${openAiRoute ? "OpenAIError" : "Error"}`,
        );
      }
    }
  });

  it("describes the answer stream as a oneOf of the event payloads, discriminated by type", () => {
    const answerEvent = doc.components.schemas.AnswerEvent!;
    expect(answerEvent.discriminator?.propertyName).toBe("type");
    const mapping = answerEvent.discriminator?.mapping ?? {};
    expect(Object.keys(mapping).sort()).toEqual([
      "message.completed",
      "message.delta",
      "message.failed",
      "turn.started",
    ]);
    expect(answerEvent.oneOf?.map((v) => v.$ref).sort()).toEqual(Object.values(mapping).sort());
    // Every payload names its event: `type`, required, that event's name and nothing else.
    for (const [name, $ref] of Object.entries(mapping)) {
      const component = doc.components.schemas[$ref.split("/").pop()!]!;
      expect(component.properties?.type, name).toMatchObject({ const: name });
      expect(component.required, name).toContain("type");
    }
    // The send routes offer both response types (chosen by `stream`); resumption streams only.
    for (const [method, path] of [
      ["post", "/v1/conversations/{id}/messages"],
      ["post", "/v1/messages/{id}/regenerate"],
      ["get", "/v1/messages/{id}/events"],
    ] as const) {
      const stream = okContent(doc, method, path, "text/event-stream");
      expect(stream.schema?.$ref, path).toBe("#/components/schemas/AnswerEvent");
      expect(stream["x-sse-events"], path).toBeUndefined();
      const content = Object.keys(doc.paths[path]![method]!.responses["200"]!.content ?? {}).sort();
      expect(content, path).toEqual(
        method === "get" ? ["text/event-stream"] : ["application/json", "text/event-stream"],
      );
    }
    expect(okContent(doc, "post", "/v1/conversations/{id}/messages", "application/json").schema?.$ref).toBe(
      "#/components/schemas/TurnResult",
    );
    const chunks = okContent(doc, "post", "/v1/chat/completions", "text/event-stream");
    expect(chunks["x-sse-events"]?.message?.oneOf).toContainEqual({
      $ref: "#/components/schemas/ChatCompletionChunk",
    });
  });

  it("documents WWW-Authenticate on 401, Retry-After on 429 and the rate-limit headers where they are sent", () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of HTTP_METHODS) {
        const op = item[method];
        if (!op) continue;
        if (op.responses["401"])
          expect(op.responses["401"].headers, `${method} ${path}`).toHaveProperty("WWW-Authenticate");
        if (op.responses["429"])
          expect(op.responses["429"].headers, `${method} ${path}`).toHaveProperty("Retry-After");
      }
    }
    for (const path of ["/v1/conversations/{id}/messages", "/v1/chat/completions"]) {
      const responses = doc.paths[path]!.post!.responses;
      expect(Object.keys(responses["200"]!.headers ?? {}).sort(), path).toEqual([
        "x-d1-bookmark",
        "x-ratelimit-limit-requests",
        "x-ratelimit-reset-requests",
      ]);
      expect(Object.keys(responses["429"]!.headers ?? {}).sort(), path).toEqual([
        "Retry-After",
        "x-d1-bookmark",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
      ]);
    }
  });

  it("the documented headers are the ones real responses carry", async () => {
    const user = newUser("oas");
    const conversation = await createConversation(user);
    const turn = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content: `hello [[stand-in tokens=2 tag=${newTag()}]]`,
      stream: false,
    });
    expect(turn.status).toBe(200);
    const streamed = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content: `again [[stand-in tokens=2 tag=${newTag()}]]`,
    });
    expect(streamed.headers.get("content-type")).toMatch(/^text\/event-stream/);
    await streamed.text();
    const documented = Object.keys(
      doc.paths["/v1/conversations/{id}/messages"]!.post!.responses["200"]!.headers!,
    );
    expect(documented.length).toBeGreaterThan(0);
    for (const name of documented) {
      expect(turn.headers.get(name), name).toMatch(/^\S+$/);
      expect(streamed.headers.get(name), name).toMatch(/^\S+$/);
    }
    const unauthorized = await exports.default.fetch("http://localhost/v1/conversations");
    expect(unauthorized.status).toBe(401);
    expect(unauthorized.headers.get("WWW-Authenticate")).toBe("Bearer");
  });

  it("modalities is an array of an enum, not a tuple schema", () => {
    const params = doc.components.schemas.GenerationParameters as { properties: Record<string, unknown> };
    expect(params.properties.modalities).toMatchObject({
      type: "array",
      items: { enum: ["text", "audio"] },
      contains: { const: "text" },
    });
    expect(JSON.stringify(params.properties.modalities)).not.toMatch(/prefixItems|oneOf/);
  });
});

describe("component schemas come from the validating zod schemas", () => {
  it("ChatCompletionRequest accepts what the endpoint accepts and rejects what it rejects", async () => {
    const validate = componentValidator(ajv, "ChatCompletionRequest");
    const good = {
      model: "qwen-plus",
      messages: [{ role: "user", content: "hi" }],
      n: 4,
      temperature: 0.5,
      modalities: ["text"],
    };
    expect(validate(good).ok).toBe(true);
    for (const bad of [
      { ...good, n: 5 },
      { ...good, temperature: 2 },
      { ...good, unknown_field: 1 },
      { ...good, modalities: ["audio"] },
      { ...good, messages: [] },
    ]) {
      expect(validate(bad).ok, JSON.stringify(bad)).toBe(false);
      const res = await call(newUser("oas"), "POST", "/chat/completions", bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
  });

  it("a file part validates in a turn, in a stored message and in a chat completion request", async () => {
    const user = newUser("oas");
    const file = await upload(user, jpegOf(64, 64));
    const content = [{ type: "text", text: `see [[stand-in tokens=2 tag=${newTag()}]]` }, filePart(file.id)];
    expect(componentValidator(ajv, "CreateTurnRequest")({ content }).ok).toBe(true);
    expect(componentValidator(ajv, "CreateTurnRequest")({ content: [{ type: "file", file: {} }] }).ok).toBe(
      false,
    );
    const request = { model: VISION_MODEL, messages: [{ role: "user", content }] };
    expect(componentValidator(ajv, "ChatCompletionRequest")(request).ok).toBe(true);

    const conversation = await createConversation(user, { model: VISION_MODEL });
    const turn = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content,
      stream: false,
    });
    expect(turn.status).toBe(200);
    const messages = await (await call(user, "GET", `/conversations/${conversation.id}/messages`)).json();
    expect(componentValidator(ajv, "MessagePage")(messages)).toEqual({ ok: true, errors: null });
  });

  it("a real Conversation, message page and turn result validate against their components", async () => {
    const user = newUser("oas");
    const conversation = await createConversation(user, { title: "Doc", parameters: { temperature: 0.3 } });
    expect(componentValidator(ajv, "Conversation")(conversation)).toEqual({ ok: true, errors: null });

    const list = await (await call(user, "GET", "/conversations")).json();
    expect(componentValidator(ajv, "ConversationPage")(list)).toEqual({ ok: true, errors: null });

    const turn = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content: `hello [[stand-in tokens=3 tag=${newTag()}]]`,
      stream: false,
    });
    expect(turn.status).toBe(200);
    const result = (await turn.json()) as TurnResult;
    expect(componentValidator(ajv, "TurnResult")(result)).toEqual({ ok: true, errors: null });
    expect(undocumented(doc, "Conversation", conversation)).toEqual([]);
    expect(undocumented(doc, "Message", result.assistant_message!)).toEqual([]);
    expect(undocumented(doc, "MessageUsage", result.assistant_message!.usage!)).toEqual([]);

    const messages = await (await call(user, "GET", `/conversations/${conversation.id}/messages`)).json();
    expect(componentValidator(ajv, "MessagePage")(messages)).toEqual({ ok: true, errors: null });

    const notFound = await call(user, "GET", "/conversations/nope");
    expect(componentValidator(ajv, "Error")(await notFound.json())).toEqual({ ok: true, errors: null });
  });

  it("real exports and sync pages validate against their components", async () => {
    const user = newUser("oas");
    const conversation = await createConversation(user, { title: "Doc" });
    const turn = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content: `hello [[stand-in tokens=3 tag=${newTag()}]]`,
      stream: false,
    });
    expect(turn.status).toBe(200);
    const one = await (await call(user, "GET", `/conversations/${conversation.id}/export`)).json();
    expect(componentValidator(ajv, "ConversationExport")(one)).toEqual({ ok: true, errors: null });
    const all = await (await call(user, "GET", "/account/export")).json();
    expect(componentValidator(ajv, "AccountExport")(all)).toEqual({ ok: true, errors: null });

    const snapshot = (await (await call(user, "GET", "/sync")).json()) as { next_since: string };
    expect(componentValidator(ajv, "SyncPage")(snapshot)).toEqual({ ok: true, errors: null });
    expect((await call(user, "DELETE", `/conversations/${conversation.id}`)).status).toBe(204);
    const changes = await (await call(user, "GET", `/sync?since=${snapshot.next_since}`)).json();
    expect(changes).toMatchObject({ changes: [{ op: "delete", data: null }] });
    expect(componentValidator(ajv, "SyncPage")(changes)).toEqual({ ok: true, errors: null });
  });

  it("a real search page, with a title hit and a message hit, validates against its component", async () => {
    const user = newUser("oas");
    const conversation = await createConversation(user, { title: "Heron sightings" });
    const turn = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content: "a grey heron [[stand-in tokens=2]]",
      stream: false,
    });
    expect(turn.status).toBe(200);
    const page = (await (await call(user, "GET", "/search?q=heron&limit=1")).json()) as {
      data: Record<string, unknown>[];
      next_cursor: string | null;
    };
    expect(componentValidator(ajv, "SearchPage")(page)).toEqual({ ok: true, errors: null });
    expect(page.next_cursor).not.toBeNull();
    const next = (await (await call(user, "GET", `/search?q=heron&cursor=${page.next_cursor}`)).json()) as {
      data: Record<string, unknown>[];
    };
    expect(componentValidator(ajv, "SearchPage")(next)).toEqual({ ok: true, errors: null });
    const hits = [...page.data, ...next.data];
    expect(hits.map((hit) => hit.message_id === null)).toContain(true);
    expect(hits.map((hit) => hit.message_id === null)).toContain(false);
    for (const hit of hits) expect(undocumented(doc, "SearchHit", hit)).toEqual([]);
  });

  it("a tool turn answering parallel calls: its request and turn.started validate against their components", async () => {
    const user = newUser("oas");
    const tool = (name: string) => ({
      type: "function",
      function: { name, parameters: { type: "object", properties: {} } },
    });
    const conversation = await createConversation(user, {
      parameters: { tools: [tool("get_time"), tool("get_date")], parallel_tool_calls: true },
    });
    const { events } = await readSse(
      await call(user, "POST", `/conversations/${conversation.id}/messages`, {
        content: `when? [[stand-in tool_call calls=2 tag=${newTag()}]]`,
      }),
    );
    const calls = endMessage(events.at(-1)).tool_calls as { id: string }[];
    const body = { role: "tool", tool_results: calls.map((c) => ({ tool_call_id: c.id, content: "now" })) };
    expect(componentValidator(ajv, "CreateTurnRequest")(body)).toEqual({ ok: true, errors: null });

    const started = await readSse(
      await call(user, "POST", `/conversations/${conversation.id}/messages`, body),
    );
    expect(started.events[0]!.event).toBe("turn.started");
    expect(startedData(started.events[0]).tool_messages).toHaveLength(2);
    expect(componentValidator(ajv, "TurnStartedEvent")(started.events[0]!.data)).toEqual({
      ok: true,
      errors: null,
    });
    expect(undocumented(doc, "TurnStartedEvent", started.events[0]!.data)).toEqual([]);
  });

  it("real OpenAI-compatible responses validate against their components", async () => {
    const user = newUser("oas");
    const completion = await call(user, "POST", "/chat/completions", {
      model: "qwen-plus",
      messages: [{ role: "user", content: `hi [[stand-in tokens=4 tag=${newTag()}]]` }],
    });
    expect(completion.status).toBe(200);
    expect(componentValidator(ajv, "ChatCompletion")(await completion.json())).toEqual({
      ok: true,
      errors: null,
    });

    const models = await call(user, "GET", "/models");
    expect(componentValidator(ajv, "ModelList")(await models.json())).toEqual({
      ok: true,
      errors: null,
    });

    const unauthorized = await exports.default.fetch("http://localhost/v1/models");
    expect(componentValidator(ajv, "OpenAIError")(await unauthorized.json())).toEqual({
      ok: true,
      errors: null,
    });
  });

  it("real API-key responses validate against their components", async () => {
    const user = newUser("oas");
    const created = await call(user, "POST", "/api-keys", { name: "server" });
    expect(created.status).toBe(201);
    const key = (await created.json()) as Record<string, unknown>;
    expect(componentValidator(ajv, "CreatedApiKey")(key)).toEqual({ ok: true, errors: null });
    expect(undocumented(doc, "CreatedApiKey", key)).toEqual([]);
    const list = (await (await call(user, "GET", "/api-keys")).json()) as { data: Record<string, unknown>[] };
    expect(componentValidator(ajv, "ApiKeyList")(list)).toEqual({ ok: true, errors: null });
    expect(undocumented(doc, "ApiKey", list.data[0]!)).toEqual([]);
  });

  it("a real streamed turn's events validate against the documented event payloads", async () => {
    const user = newUser("oas");
    const conversation = await createConversation(user);
    const res = await call(user, "POST", `/conversations/${conversation.id}/messages`, {
      content: `hello [[stand-in tokens=3 tag=${newTag()}]]`,
    });
    const text = await res.text();
    const mapping = doc.components.schemas.AnswerEvent?.discriminator?.mapping ?? {};
    let seen = 0;
    for (const block of text.split("\n\n")) {
      const name = /^event: (.+)$/m.exec(block)?.[1];
      const data = /^data: (.+)$/m.exec(block)?.[1];
      if (!name || !data) continue;
      const ref = mapping[name];
      if (!ref) throw new Error(`no schema for event ${name}`);
      const component = ref.split("/").pop()!;
      expect(componentValidator(ajv, component)(JSON.parse(data)), name).toEqual({
        ok: true,
        errors: null,
      });
      // The union validates it too, through the discriminator's one matching branch.
      expect(componentValidator(ajv, "AnswerEvent")(JSON.parse(data)), name).toEqual({
        ok: true,
        errors: null,
      });
      seen++;
    }
    expect(seen).toBeGreaterThanOrEqual(3);
  });
});
