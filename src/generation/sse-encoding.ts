/** Server-sent events as edge-chat sends them (`../shared/API.md`, "The answer stream"). */

const encoder = new TextEncoder();

/** One SSE event with its id, name and JSON data. */
export function encodeEvent(id: number, event: string, data: unknown): Uint8Array {
  return encoder.encode(`id: ${id}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/** A comment line that keeps proxies and mobile networks from closing an idle stream. */
export const PING = encoder.encode(": ping\n\n");

/** Response headers of every answer stream. `no-transform` keeps intermediaries from buffering or compressing it. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache, no-transform",
  "x-accel-buffering": "no",
};
