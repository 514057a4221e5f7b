import { type EventSourceMessage, EventSourceParserStream } from "eventsource-parser/stream";

/**
 * The events of a `text/event-stream` body, parsed by eventsource-parser (comments such as
 * `: ping` are dropped by it). Rejects with the body's own error when the connection drops.
 */
export async function* sseEvents(body: ReadableStream<Uint8Array>): AsyncGenerator<EventSourceMessage> {
  const reader = body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(new EventSourceParserStream())
    .getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    // Closes the connection when the reader stops early (a terminal event, or `break` by the caller).
    await reader.cancel().catch(() => {});
  }
}
