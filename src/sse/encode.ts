/**
 * Writing server-sent events (WHATWG HTML, "Server-sent events"): this service's answer
 * streams (`../shared/API.md`, "The answer stream") and its OpenAI-compatible stream.
 */

const encoder = new TextEncoder();

/** Line breaks a `data` value may contain; each one starts a new `data:` line. */
const LINE_BREAK = /\r\n|\r|\n/;

/** One event. `id` and `event` must be free of line breaks (ours are numbers and fixed names). */
export interface SseFrame {
  id?: number;
  event?: string;
  /** The payload: JSON text, or a sentinel such as `[DONE]`. */
  data: string;
}

/**
 * The text of one event: `id: N`, `event: NAME`, one `data: …` line per line of `data` (a reader
 * joins them with `\n`; JSON from `JSON.stringify` is one line), then the blank line that
 * dispatches it. Fields are written in that order, each after `: `.
 */
export function eventText(frame: SseFrame): string {
  let text = "";
  if (frame.id !== undefined) text += `id: ${frame.id}\n`;
  if (frame.event !== undefined) text += `event: ${frame.event}\n`;
  const data = LINE_BREAK.test(frame.data) ? frame.data.split(LINE_BREAK).join("\ndata: ") : frame.data;
  return `${text}data: ${data}\n\n`;
}

/** {@link eventText} as UTF-8 bytes. */
export function eventBytes(frame: SseFrame): Uint8Array {
  return encoder.encode(eventText(frame));
}

/** A comment line (readers ignore it) and the blank line after it: `: TEXT\n\n`. */
export function commentBytes(text: string): Uint8Array {
  return encoder.encode(`: ${text}\n\n`);
}
