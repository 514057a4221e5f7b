const encoder = new TextEncoder();

/**
 * A byte stream of the texts `parts` yields, UTF-8 encoded, one chunk per part, produced on
 * demand: the next part is asked for only when the reader pulls (`highWaterMark: 0`, so nothing
 * is produced ahead of the reader and a slow client holds back the producer, not memory). A
 * reader that cancels ends the generator (its `finally` blocks run). An error thrown by the
 * generator errors the stream: the client sees a cut-off body, not a complete one.
 */
export function textStream(parts: AsyncGenerator<string, void, undefined>): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        for (;;) {
          const { value, done } = await parts.next();
          if (done) {
            controller.close();
            return;
          }
          // An empty chunk would read as nothing to the client; ask for the next part instead.
          if (value !== "") {
            controller.enqueue(encoder.encode(value));
            return;
          }
        }
      },
      async cancel() {
        await parts.return();
      },
    },
    { highWaterMark: 0 },
  );
}
