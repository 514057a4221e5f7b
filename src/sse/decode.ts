/**
 * Reading server-sent events (WHATWG HTML, "Server-sent events": "Interpreting an event
 * stream"): DashScope's answer streams (`dashscope/stream.ts`) and this service's own stored event
 * logs (`generation/answer-log.ts`).
 */
import { createParser, type EventSourceParser } from "eventsource-parser";

/** One dispatched Server-Sent Event. `event`/`id` are absent when the frame had no such field. */
export interface SseEvent {
  event?: string;
  id?: string;
  data: string;
}

/** Callbacks of {@link SseDecoder}; both are called synchronously from `push`/`end`. */
export interface SseHandlers {
  onEvent(event: SseEvent): void;
  /** A comment line without its leading `:` (and one optional space), e.g. `HTTP_STATUS/429` or `ping`. */
  onComment?(comment: string): void;
}

/*
 * Appended to the text at EOF. eventsource-parser has no "end of stream" call: `reset({consume:true})`
 * parses a trailing partial line but then clears the pending event instead of dispatching it. Feeding
 * two line feeds terminates any partial line and then supplies the blank line that dispatches the event.
 * It is harmless in every other state: after a complete event the extra lines are empty blocks (no
 * data, nothing dispatched), and after a trailing `\r` the parser swallows the first `\n` as the second
 * half of a CRLF, so the remaining `\n` is still the dispatching blank line.
 */
const EOF_TERMINATOR = "\n\n";

/**
 * Streaming SSE decoder: bytes in, events and comments out, for any split of the input.
 *
 * UTF-8 is decoded with a streaming `TextDecoder`, so a character split across `push` calls is
 * reassembled; line parsing (LF, CRLF, lone CR, `data:` with or without a space, multi-line data,
 * `event:`/`id:` fields, comments) is eventsource-parser's.
 *
 * Unlike the SSE specification, which discards an event that is not followed by a blank line when
 * the stream ends, {@link end} dispatches such a pending event: DashScope's native error frame
 * (`id:1 / event:error / :HTTP_STATUS/429 / data:{…}`) can be the last thing on the connection
 * before it closes, and dropping it would turn a throttling error into an unexplained truncation.
 */
export class SseDecoder {
  private readonly parser: EventSourceParser;
  private readonly textDecoder = new TextDecoder("utf-8");
  private ended = false;

  constructor(handlers: SseHandlers) {
    const onComment = handlers.onComment;
    this.parser = createParser({
      onEvent: (message) => {
        handlers.onEvent(message as SseEvent);
      },
      // Without an onComment callback the parser discards partial comment lines early, so one is
      // always registered; DashScope's `:HTTP_STATUS/NNN` status line is a comment.
      onComment: onComment ? (comment) => onComment.call(handlers, comment) : () => {},
    });
  }

  /** Feeds the next slice of the body. Events completed by this slice are dispatched before it returns. */
  push(bytes: Uint8Array): void {
    if (this.ended) throw new Error("SseDecoder.push called after end()");
    const text = this.textDecoder.decode(bytes, { stream: true });
    if (text.length > 0) this.parser.feed(text);
  }

  /**
   * Marks end of stream: flushes the UTF-8 decoder (an incomplete trailing sequence becomes U+FFFD)
   * and dispatches a pending event that has data but no closing blank line. Idempotent.
   */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const rest = this.textDecoder.decode();
    this.parser.feed(rest + EOF_TERMINATOR);
  }
}

/**
 * The events of a complete SSE text, in order: one that {@link eventText} (`./encode`) wrote, such
 * as a stored event log. A last event without its closing blank line is dispatched, as by
 * {@link SseDecoder.end}.
 */
export function decodeEvents(text: string): SseEvent[] {
  const events: SseEvent[] = [];
  const parser = createParser({ onEvent: (message) => events.push(message) });
  parser.feed(text + EOF_TERMINATOR);
  return events;
}
