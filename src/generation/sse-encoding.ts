/** Server-sent events as edge-chat sends them (`../shared/API.md`, "The answer stream"). */

const encoder = new TextEncoder();

/** One SSE event with its id, name and data given as JSON text (one line: JSON.stringify never emits newlines). */
export function eventText(id: number, event: string, json: string): string {
  return `id: ${id}\nevent: ${event}\ndata: ${json}\n\n`;
}

/** A finished stream of stored events. */
export function replayStream(
  events: { id: number; event: string; data: string }[],
): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      if (events.length > 0)
        controller.enqueue(encoder.encode(events.map((e) => eventText(e.id, e.event, e.data)).join("")));
      controller.close();
    },
  });
}

/** A comment line that keeps proxies and mobile networks from closing an idle stream. */
export const PING = encoder.encode(": ping\n\n");

/** Response headers of every answer stream. `no-transform` keeps intermediaries from buffering or compressing it. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};
