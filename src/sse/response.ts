import { eventText, type SseFrame } from "./encode";

const encoder = new TextEncoder();

/**
 * Response headers of every event stream. `no-transform` keeps intermediaries from buffering or
 * compressing it; `x-accel-buffering: no` does the same for nginx-style proxies.
 */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};

/** A finished stream of `frames`, written at once. */
export function replayStream(frames: readonly SseFrame[]): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (frames.length > 0) controller.enqueue(encoder.encode(frames.map(eventText).join("")));
      controller.close();
    },
  });
}
