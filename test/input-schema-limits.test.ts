import { describe, expect, it } from "vitest";
import * as z from "zod";
import {
  describeIssue,
  findJsonInputProblem,
  MAX_CONTENT_PARTS,
  MAX_JSON_DEPTH,
  parseChatCompletionRequest,
  parseGenerationParameters,
} from "../src/dashscope/schema";
import { mediaUrlProblem } from "../src/dashscope/schema/media-url";

const image = { mediaPrefix: "image/" };

describe("media URLs must name a public host", () => {
  it.each([
    "http://127.0.0.1/a.png",
    "http://[::1]/a.png",
    "http://[::ffff:192.168.0.1]/a.png",
    "http://[::127.0.0.1]/a.png",
    "http://[fc00::5]/a.png",
    "http://224.0.0.1/a.png",
    "http://255.255.255.255/a.png",
    "http://192.0.2.10/a.png",
    "http://3232235777/a.png",
    "http://0xc0a80001/a.png",
    "http://printer.local/a.png",
    "http://db.internal/a.png",
    "http://nas.home.arpa/a.png",
    "http://localhost:8080/a.png",
    "http://metadata/computeMetadata/v1/",
  ])("%s is refused", (url) => {
    expect(mediaUrlProblem(url, image)).toMatch(/^must point at a public host/);
  });

  it.each([
    "https://example.com/a.png",
    "https://cdn.example.com./a.png",
    "http://8.8.8.8/a.png",
    "http://[2606:4700::1111]/a.png",
    "https://xn--bcher-kva.example/a.png",
  ])("%s is accepted", (url) => {
    expect(mediaUrlProblem(url, image)).toBeNull();
  });
});

describe("nesting and text are checked before the schema", () => {
  const nest = (levels: number): unknown => {
    let value: unknown = 1;
    for (let i = 0; i < levels; i++) value = [value];
    return value;
  };

  it(`accepts ${MAX_JSON_DEPTH} levels and refuses one more, naming the path`, () => {
    expect(findJsonInputProblem(nest(MAX_JSON_DEPTH))).toBeNull();
    const problem = findJsonInputProblem({ a: nest(MAX_JSON_DEPTH) });
    expect(problem?.param).toBe(`a${".0".repeat(MAX_JSON_DEPTH - 1)}`);
  });

  it("walks 100,000 levels without recursion", () => {
    expect(findJsonInputProblem(nest(100_000), "parameters")?.param).toMatch(/^parameters(\.0)+$/);
  });

  it("reports the first ill-formed string in document order and prefixes the path", () => {
    const problem = findJsonInputProblem({ a: ["ok", "x\ud800"], b: "\udfff" }, "parameters");
    expect(problem?.param).toBe("parameters.a.1");
  });

  it("parseGenerationParameters and parseChatCompletionRequest apply it", () => {
    const params = parseGenerationParameters({ stop: "\ud83d" }, "parameters");
    expect(params.ok || params.error.param).toBe("parameters.stop");
    const request = parseChatCompletionRequest({
      model: "qwen-plus",
      messages: [{ role: "user", content: "hi" }],
      response_format: { type: "json_schema", json_schema: { name: "x", schema: nest(100) } },
    });
    expect(request.ok || request.error.param).toMatch(/^response_format\.json_schema\.schema(\.0)+$/);
  });
});

describe("issues are worded for what went wrong", () => {
  const schema = z.strictObject({ a: z.string(), b: z.array(z.int()).max(2).optional() });

  it("a wrong type names the expected type even without reportInput", () => {
    const issue = schema.safeParse({ a: 5 }).error!.issues[0]!;
    expect(describeIssue(issue).message).toBe('"a" must be a string.');
  });

  it("a missing field is required (with reportInput)", () => {
    const issue = schema.safeParse({}, { reportInput: true }).error!.issues[0]!;
    expect(describeIssue(issue).message).toBe('"a" is required.');
  });

  it("a content array that is too long says so, not that it has the wrong type", () => {
    const parts = Array.from({ length: MAX_CONTENT_PARTS + 1 }, () => ({ type: "text", text: "a" }));
    const result = parseChatCompletionRequest({
      model: "qwen-plus",
      messages: [{ role: "user", content: parts }],
    });
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.error).toEqual({
        param: "messages.0.content",
        message: `"messages.0.content" must contain at most ${MAX_CONTENT_PARTS} items.`,
      });
    }
  });

  it("an unknown key is echoed well-formed and never cut inside a surrogate pair", () => {
    const key = `${"k".repeat(63)}😀tail`;
    const issue = schema.safeParse({ a: "x", [key]: 1 }).error!.issues[0]!;
    const { message } = describeIssue(issue);
    expect(message.isWellFormed()).toBe(true);
    expect(message).toContain(`"${"k".repeat(63)}…"`);
  });
});
