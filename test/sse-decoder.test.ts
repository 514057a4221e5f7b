import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SseDecoder } from "../src/sse/decode";
import { STREAM_FIXTURES } from "./fixtures/dashscope";
import { splitAt } from "./helpers/chunks";

type Record = ["event", string | null, string | null, string] | ["comment", string];

const encoder = new TextEncoder();

/** Feeds `chunks` to a fresh decoder and returns everything it reported, in order. */
function decode(chunks: Uint8Array[]): Record[] {
  const out: Record[] = [];
  const decoder = new SseDecoder({
    onEvent: (e) => out.push(["event", e.event ?? null, e.id ?? null, e.data]),
    onComment: (c) => out.push(["comment", c]),
  });
  for (const chunk of chunks) decoder.push(chunk);
  decoder.end();
  return out;
}

function byteAtATime(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
}

/** Fixture text with a comment line before every line (inside event blocks and between them). */
function withComments(text: string): string {
  return text.replace(/^/gm, ": ping\n").replace(/^: ping\n(data: \[DONE\])/m, ":HTTP_STATUS/200\n$1");
}

/** A fixture whose content deltas are multi-byte UTF-8 (3-byte CJK, 4-byte emoji). */
const MULTIBYTE_TEXT = STREAM_FIXTURES["stream-text-usage.sse"]
  .replace('"I am"', '"杭州市 🌧"')
  .replace('" a large language model"', '"，今天有雨☔️。"');

const variants: [string, string][] = [];
for (const [name, text] of Object.entries(STREAM_FIXTURES)) {
  variants.push([name, text]);
  variants.push([`${name} (CRLF)`, text.replace(/\n/g, "\r\n")]);
  variants.push([`${name} (CR)`, text.replace(/\n/g, "\r")]);
  variants.push([`${name} (comments)`, withComments(text)]);
}
variants.push(["multi-byte UTF-8", MULTIBYTE_TEXT]);
variants.push(["multi-byte UTF-8 (CRLF, comments)", withComments(MULTIBYTE_TEXT).replace(/\n/g, "\r\n")]);

describe("fixtures", () => {
  it("are loaded byte-exact, LF-only, with a blank line after the last event", () => {
    for (const text of Object.values(STREAM_FIXTURES)) {
      expect(text).not.toContain("\r");
      expect(text.endsWith("\n\n")).toBe(true);
    }
    expect(MULTIBYTE_TEXT).toContain("杭州市 🌧");
  });

  it.each(Object.entries(STREAM_FIXTURES))(
    "%s whole: one event per blank-line block, data as on the wire",
    (_, text) => {
      // Independent expectation: blocks separated by blank lines; `data:` with or without one space.
      const expected: Record[] = [];
      for (const block of text.split("\n\n")) {
        const lines = block.split("\n").filter((l) => l !== "");
        const data = lines
          .filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(l.startsWith("data: ") ? 6 : 5));
        for (const l of lines) if (l.startsWith(":")) expected.push(["comment", l.slice(1)]);
        if (data.length === 0) continue;
        const event = lines.find((l) => l.startsWith("event:"))?.slice(6) ?? null;
        const id = lines.find((l) => l.startsWith("id:"))?.slice(3) ?? null;
        expected.push(["event", event, id, data.join("\n")]);
      }
      expect(expected.length).toBeGreaterThan(0);
      expect(decode([encoder.encode(text)])).toEqual(expected);
    },
  );
});

describe("any split of the byte stream gives the same events", () => {
  it.each(variants)("%s", (_, text) => {
    const bytes = encoder.encode(text);
    const whole = decode([bytes]);
    expect(whole.length).toBeGreaterThan(0);
    expect(decode(byteAtATime(bytes))).toEqual(whole);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: bytes.length }), { maxLength: 120 }), (cuts) => {
        expect(decode(splitAt(bytes, cuts))).toEqual(whole);
      }),
      { numRuns: 60 },
    );
  });

  it("line-ending style and inserted comments do not change the events", () => {
    for (const text of [...Object.values(STREAM_FIXTURES), MULTIBYTE_TEXT]) {
      const all = decode([encoder.encode(text)]);
      const events = all.filter((r) => r[0] === "event");
      expect(decode([encoder.encode(text.replace(/\n/g, "\r\n"))])).toEqual(all);
      expect(decode([encoder.encode(text.replace(/\n/g, "\r"))])).toEqual(all);
      const commented = decode([encoder.encode(withComments(text))]);
      expect(commented.filter((r) => r[0] === "event")).toEqual(events);
      expect(commented.filter((r) => r[0] === "comment").length).toBeGreaterThan(all.length);
    }
  });

  it("reassembles CJK and emoji split inside their UTF-8 sequences", () => {
    const bytes = encoder.encode(MULTIBYTE_TEXT);
    const events = decode(byteAtATime(bytes));
    const contents = events.map((r) => (r[0] === "event" && r[3].startsWith("{") ? JSON.parse(r[3]) : null));
    const deltas = contents.flatMap((c) =>
      (c?.choices ?? []).map((ch: { delta: { content?: string } }) => ch.delta.content),
    );
    expect(deltas).toContain("杭州市 🌧");
    expect(deltas).toContain("，今天有雨☔️。");
    expect(events.some((r) => r[0] === "event" && r[3].includes("\uFFFD"))).toBe(false);
  });
});

describe("hand cases", () => {
  const text = (s: string) => [encoder.encode(s)];

  it("accepts `data:` with or without one space; a second space is data", () => {
    expect(decode(text("data:x\n\ndata: y\n\ndata:  z\n\n"))).toEqual([
      ["event", null, null, "x"],
      ["event", null, null, "y"],
      ["event", null, null, " z"],
    ]);
  });

  it("reports `event:` and `id:` fields with the event they belong to", () => {
    expect(
      decode(text("id:1\nevent:error\ndata:{}\n\nevent: result\nid: 7\ndata: a\n\ndata: b\n\n")),
    ).toEqual([
      ["event", "error", "1", "{}"],
      ["event", "result", "7", "a"],
      ["event", null, null, "b"],
    ]);
  });

  it("joins multi-line data with LF, whatever the line endings", () => {
    const expected = [["event", null, null, "a\nb\n"]];
    expect(decode(text("data: a\ndata: b\ndata\n\n"))).toEqual(expected);
    expect(decode(text("data: a\r\ndata: b\r\ndata\r\n\r\n"))).toEqual(expected);
    expect(decode(text("data: a\rdata: b\rdata\r\r"))).toEqual(expected);
  });

  it("surfaces comments without the colon and one space", () => {
    expect(decode(text(": ping\n:HTTP_STATUS/429\n:  two spaces\ndata: x\n\n"))).toEqual([
      ["comment", "ping"],
      ["comment", "HTTP_STATUS/429"],
      ["comment", " two spaces"],
      ["event", null, null, "x"],
    ]);
  });

  it("does not dispatch a block without data", () => {
    expect(decode(text("id:1\nevent:error\n\n: only a comment\n\n"))).toEqual([
      ["comment", "only a comment"],
    ]);
  });

  it("dispatches an event that lacks the final blank line only at EOF", () => {
    for (const tail of ["", "\n", "\r", "\r\n"]) {
      const seen: string[] = [];
      const decoder = new SseDecoder({ onEvent: (e) => seen.push(`${e.event}:${e.data}`) });
      decoder.push(
        encoder.encode(`data: first\n\nid:1\nevent:error\n:HTTP_STATUS/429\ndata:{"code":"X"}${tail}`),
      );
      expect(seen).toEqual(["undefined:first"]);
      decoder.end();
      expect(seen).toEqual(["undefined:first", 'error:{"code":"X"}']);
      decoder.end();
      expect(seen).toHaveLength(2);
    }
  });

  it("does not invent an event at EOF after a complete stream or a CR-terminated event", () => {
    expect(decode(text("data: a\n\n"))).toEqual([["event", null, null, "a"]]);
    expect(decode(text("data: a\r\r"))).toEqual([["event", null, null, "a"]]);
    expect(decode(text("data: a\r\n\r\n"))).toEqual([["event", null, null, "a"]]);
    expect(decode([])).toEqual([]);
  });

  it("treats a CR at a chunk boundary as one terminator with a following LF", () => {
    const chunks = [
      encoder.encode("data: a\r"),
      encoder.encode("\ndata: b\r"),
      encoder.encode("\n\r"),
      encoder.encode("\n"),
    ];
    expect(decode(chunks)).toEqual([["event", null, null, "a\nb"]]);
  });

  it("replaces a UTF-8 sequence cut off by EOF instead of dropping the event", () => {
    const bytes = encoder.encode("data: 杭");
    expect(decode([bytes.subarray(0, bytes.length - 1)])).toEqual([["event", null, null, "\uFFFD"]]);
  });

  it("refuses input after end()", () => {
    const decoder = new SseDecoder({ onEvent: () => {} });
    decoder.end();
    expect(() => decoder.push(encoder.encode("data: x\n\n"))).toThrow();
  });
});
