import { describe, expect, it } from "vitest";
import { cleanUpstreamMessage, parseUpstreamErrorBody } from "../src/dashscope/errors";
import { DashScopeEventDecoder } from "../src/dashscope/stream";
import { parseWellFormedJson, truncateText } from "../src/text/well-formed";

const encode = (text: string) => new TextEncoder().encode(text);

describe("upstream JSON is parsed into well-formed text", () => {
  it("replaces a lone surrogate escape in values and keys with U+FFFD, keeping real pairs", () => {
    const value = parseWellFormedJson('{"a":"x\\ud83d","b":["\\ude00y"],"c\\ud800":1,"d":"\\ud83d\\ude00"}');
    expect(value).toEqual({ a: "x\ufffd", b: ["\ufffdy"], "c\ufffd": 1, d: "😀" });
  });

  it("parses text without surrogate escapes exactly as JSON.parse does", () => {
    const text = '{"a":"plain ü 😀","b":[1,null,true],"c":"\\\\ud83d is text"}';
    expect(parseWellFormedJson(text)).toEqual(JSON.parse(text));
  });

  it("repairs chunk text, error messages and echoed frames", () => {
    const decoder = new DashScopeEventDecoder();
    const events = decoder.push(
      encode(
        'data: {"choices":[{"delta":{"content":"a\\ud83d"},"index":0}]}\n\n' +
          'data: {"error":{"code":"x","message":"bad \\udc00"}}\n\n',
      ),
    );
    expect(events[0]).toMatchObject({ chunk: { choices: [{ delta: { content: "a\ufffd" } }] } });
    expect(events[1]).toMatchObject({ error: { message: "bad \ufffd" } });
    expect(parseUpstreamErrorBody('{"error":{"message":"m\\ud83d"}}').message).toBe("m\ufffd");
  });
});

describe("truncated text never splits a surrogate pair", () => {
  it("cuts before a pair that straddles the limit", () => {
    expect(truncateText("ab😀", 3)).toBe("ab");
    expect(truncateText("ab😀", 4)).toBe("ab😀");
    expect(truncateText("abc", 2)).toBe("ab");
  });

  it("in relayed upstream messages and echoed native frames", () => {
    const message = cleanUpstreamMessage(`${"x".repeat(499)}😀 more`);
    expect(message.isWellFormed()).toBe(true);
    const decoder = new DashScopeEventDecoder();
    const [event] = [...decoder.push(encode(`event:error\ndata:${"y".repeat(199)}😀tail\n\n`))];
    expect(event).toMatchObject({ type: "error" });
    expect((event as { error: { message: string } }).error.message).toBe("y".repeat(199));
  });
});
