import fc from "fast-check";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { decodeEvents } from "../src/sse/decode";
import { commentBytes, eventText } from "../src/sse/encode";
import { Heartbeat, PING } from "../src/sse/heartbeat";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

describe("SSE frames", () => {
  it("writes the answer stream's and the OpenAI stream's frames byte for byte", () => {
    expect(eventText({ id: 7, event: "message.delta", data: '{"content":"hi"}' })).toBe(
      'id: 7\nevent: message.delta\ndata: {"content":"hi"}\n\n',
    );
    expect(eventText({ data: "[DONE]" })).toBe("data: [DONE]\n\n");
    expect(text(PING)).toBe(": ping\n\n");
    expect(text(commentBytes("x"))).toBe(": x\n\n");
  });

  it("reads back what it wrote, in order, whatever the data (line breaks become \\n)", () => {
    const frame = fc.record({
      id: fc.nat(),
      event: fc.stringMatching(/^[a-z][a-z.]{0,20}$/),
      data: fc.string({ unit: fc.constantFrom("a", "é", "😀", " ", ":", "\n", "\r", "\r\n", "{", '"') }),
    });
    fc.assert(
      fc.property(fc.array(frame, { maxLength: 5 }), (frames) => {
        const decoded = decodeEvents(frames.map(eventText).join(""));
        expect(decoded).toEqual(
          frames.map((f) => ({ id: String(f.id), event: f.event, data: f.data.replace(/\r\n|\r/g, "\n") })),
        );
      }),
    );
  });
});

describe("Heartbeat", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("pings at a fixed cadence when never touched, and stops when stopped", () => {
    const pings: Uint8Array[] = [];
    const heartbeat = new Heartbeat(100, (ping) => pings.push(ping));
    heartbeat.start();
    vi.advanceTimersByTime(99);
    expect(pings).toHaveLength(0);
    vi.advanceTimersByTime(1);
    expect(pings).toEqual([PING]);
    vi.advanceTimersByTime(300);
    expect(pings).toHaveLength(4);
    heartbeat.stop();
    vi.advanceTimersByTime(1_000);
    expect(pings).toHaveLength(4);
  });

  it("pings only after a quiet interval when touched on every write", () => {
    let pings = 0;
    const heartbeat = new Heartbeat(100, () => pings++);
    heartbeat.start();
    for (let i = 0; i < 10; i++) {
      vi.advanceTimersByTime(60);
      heartbeat.touch();
    }
    expect(pings).toBe(0);
    vi.advanceTimersByTime(99);
    expect(pings).toBe(0);
    vi.advanceTimersByTime(1);
    expect(pings).toBe(1);
    vi.advanceTimersByTime(100);
    expect(pings).toBe(2);
    heartbeat.stop();
  });

  it("is off when the interval is 0", () => {
    let pings = 0;
    new Heartbeat(0, () => pings++).start();
    vi.advanceTimersByTime(60_000);
    expect(pings).toBe(0);
  });
});
