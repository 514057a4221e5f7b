/**
 * An edge-chat answer stream (`../shared/API.md`, "The answer stream": `turn.started`,
 * `message.delta`, `message.completed` / `message.failed`) as the Vercel AI SDK's UI message stream,
 * which `useChat` and `readUIMessageStream` read (`../shared/ai-sdk/UI-MESSAGE-STREAM.md`).
 *
 * One answer is one step: `start` (its `messageId` is the stored answer's id, or the id of the
 * message an answer to tool results continues), `start-step`,
 * reasoning, text and tool-call parts as the deltas arrive, then on the terminal event whatever
 * the stored answer holds beyond what was streamed, `tool-input-available` for each complete call,
 * `finish-step`, `finish` with the outcome as message metadata, an `error` (failed, interrupted)
 * or `abort` (stopped) chunk, and `data: [DONE]`. Keep-alive comments pass through.
 */
import * as z from "zod";
import type { JsonValue } from "../resources/json";
import { type Message, messageSchema } from "../resources/message";
import { SseDecoder } from "../sse/decode";
import { commentBytes, eventBytes } from "../sse/encode";
import type { UiChunk, UiFinishReason } from "./chunks";

/**
 * The answer stream as UI message stream bytes; cancelling the result cancels `answer`.
 * `continues`: the id of the client's assistant message this answer continues (an answer to tool
 * results is the next step of the message holding the calls, as the AI SDK's own server keeps
 * it), for the `start` chunk; otherwise the answer's own id.
 */
export function uiMessageStream(
  answer: ReadableStream<Uint8Array>,
  continues: string | null = null,
): ReadableStream<Uint8Array> {
  const translator = new UiMessageTranslator(continues);
  let decoder: SseDecoder | null = null;
  return answer.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      start(controller) {
        const send = (chunks: UiChunk[]) => {
          for (const chunk of chunks) controller.enqueue(eventBytes({ data: JSON.stringify(chunk) }));
        };
        decoder = new SseDecoder({
          onEvent: (e) => {
            if (translator.done) return;
            send(translator.event(e.event ?? "message", e.data));
            if (translator.done) controller.enqueue(DONE);
          },
          onComment: (comment) => controller.enqueue(commentBytes(comment)),
        });
      },
      transform(bytes) {
        decoder?.push(bytes);
      },
      flush(controller) {
        decoder?.end();
        if (translator.done) return;
        for (const chunk of translator.cutOff())
          controller.enqueue(eventBytes({ data: JSON.stringify(chunk) }));
        controller.enqueue(DONE);
      },
    }),
  );
}

/** The stream's last frame. */
const DONE = eventBytes({ data: "[DONE]" });

const turnStartedSchema = z.object({
  user_message: z.object({ id: z.string() }),
  assistant_message: z.object({ id: z.string(), conversation_id: z.string() }),
});

const deltaSchema = z.object({
  content: z.string().optional(),
  reasoning_content: z.string().optional(),
  tool_calls: z
    .array(
      z.object({
        index: z.int(),
        id: z.string().nullish(),
        function: z.object({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
      }),
    )
    .optional(),
});

type ToolCallFragment = NonNullable<z.infer<typeof deltaSchema>["tool_calls"]>[number];

const terminalSchema = z.object({ message: messageSchema, d1_bookmark: z.string().optional() });

/** A tool call whose fragments are arriving, by its `index`. */
interface PendingCall {
  id: string;
  name: string;
  args: string;
  /** `tool-input-start` was sent (once its id and name were known). */
  started: boolean;
}

/**
 * The translation of one answer's events, in order, into UI message chunks. Exported for the
 * stream above; it keeps what was streamed so the terminal event adds only the rest.
 */
export class UiMessageTranslator {
  /** The terminal event was translated: nothing follows. */
  done = false;
  private open: { kind: "text" | "reasoning"; id: string } | null = null;
  private parts = 0;
  private text = "";
  private reasoning = "";
  private readonly calls = new Map<number, PendingCall>();

  /** `continues`: the UI message id for `start` (see {@link uiMessageStream}); null for the answer's own. */
  constructor(private readonly continues: string | null = null) {}

  /** The chunks of one event (`name` and its JSON `data`); an event it cannot read ends the stream with `error`. */
  event(name: string, data: string): UiChunk[] {
    let payload: unknown;
    try {
      payload = JSON.parse(data);
    } catch {
      return this.unreadable(name);
    }
    switch (name) {
      case "turn.started": {
        const p = turnStartedSchema.safeParse(payload);
        if (!p.success) return this.unreadable(name);
        return [
          {
            type: "start",
            messageId: this.continues ?? p.data.assistant_message.id,
            messageMetadata: {
              conversation_id: p.data.assistant_message.conversation_id,
              message_id: p.data.assistant_message.id,
              user_message_id: p.data.user_message.id,
            },
          },
          { type: "start-step" },
        ];
      }
      case "message.delta": {
        const p = deltaSchema.safeParse(payload);
        if (!p.success) return this.unreadable(name);
        const out: UiChunk[] = [];
        if (p.data.reasoning_content) out.push(...this.append("reasoning", p.data.reasoning_content));
        if (p.data.content) out.push(...this.append("text", p.data.content));
        for (const f of p.data.tool_calls ?? []) out.push(...this.fragment(f));
        return out;
      }
      case "message.completed":
      case "message.failed": {
        const p = terminalSchema.safeParse(payload);
        if (!p.success) return this.unreadable(name);
        return this.terminal(p.data.message, p.data.d1_bookmark);
      }
      default:
        return [];
    }
  }

  /** The chunks that end a stream whose terminal event never came (the connection to the answer broke). */
  cutOff(): UiChunk[] {
    this.done = true;
    return [...this.close(), { type: "error", errorText: "The answer stream ended before the answer did." }];
  }

  private unreadable(name: string): UiChunk[] {
    this.done = true;
    return [...this.close(), { type: "error", errorText: `Unreadable ${name} event in the answer stream.` }];
  }

  /** Text or reasoning: continues the open part of that kind, else ends the open one and starts one. */
  private append(kind: "text" | "reasoning", delta: string): UiChunk[] {
    const out: UiChunk[] = [];
    if (this.open?.kind !== kind) {
      out.push(...this.close());
      this.open = { kind, id: `${kind}-${this.parts++}` };
      out.push({ type: kind === "text" ? "text-start" : "reasoning-start", id: this.open.id });
    }
    if (kind === "text") this.text += delta;
    else this.reasoning += delta;
    out.push({ type: kind === "text" ? "text-delta" : "reasoning-delta", id: this.open.id, delta });
    return out;
  }

  private close(): UiChunk[] {
    if (!this.open) return [];
    const { kind, id } = this.open;
    this.open = null;
    return [{ type: kind === "text" ? "text-end" : "reasoning-end", id }];
  }

  /**
   * One tool-call fragment as DashScope sends it: the first carries the call's id and name
   * (`tool-input-start` once both are known), each may carry a slice of the arguments.
   */
  private fragment(f: ToolCallFragment): UiChunk[] {
    let call = this.calls.get(f.index);
    if (!call) {
      call = { id: "", name: "", args: "", started: false };
      this.calls.set(f.index, call);
    }
    if (f.id) call.id ||= f.id;
    if (f.function?.name) call.name ||= f.function.name;
    const slice = f.function?.arguments ?? "";
    call.args += slice;
    const out: UiChunk[] = [];
    if (!call.started && call.id && call.name) {
      call.started = true;
      out.push(...this.close(), { type: "tool-input-start", toolCallId: call.id, toolName: call.name });
      if (call.args) out.push({ type: "tool-input-delta", toolCallId: call.id, inputTextDelta: call.args });
    } else if (call.started && slice) {
      out.push({ type: "tool-input-delta", toolCallId: call.id, inputTextDelta: slice });
    }
    return out;
  }

  /** The stored answer: what it holds beyond the deltas, its complete calls, and how it ended. */
  private terminal(message: Message, bookmark: string | undefined): UiChunk[] {
    this.done = true;
    const out: UiChunk[] = [];
    // After a resume from storage (the deltas were collected) the terminal event alone stands
    // for them; otherwise the rests are empty.
    const reasoningRest = rest(message.reasoning_content, this.reasoning);
    if (reasoningRest && this.text === "") out.push(...this.append("reasoning", reasoningRest));
    const textRest = rest(typeof message.content === "string" ? message.content : null, this.text);
    if (textRest) out.push(...this.append("text", textRest));
    out.push(...this.close());
    const complete = new Set<string>();
    for (const call of message.tool_calls ?? []) {
      complete.add(call.id);
      const input = parseArguments(call.function.arguments);
      out.push(
        input === undefined
          ? {
              type: "tool-input-error",
              toolCallId: call.id,
              toolName: call.function.name,
              input: call.function.arguments,
              errorText: "The call's arguments are not JSON.",
            }
          : { type: "tool-input-available", toolCallId: call.id, toolName: call.function.name, input },
      );
    }
    for (const call of this.calls.values()) {
      if (!call.started || complete.has(call.id)) continue;
      out.push({
        type: "tool-input-error",
        toolCallId: call.id,
        toolName: call.name,
        input: call.args,
        errorText: "The call was cut off before its arguments were complete.",
      });
    }
    out.push({ type: "finish-step" });
    out.push({
      type: "finish",
      finishReason: finishReasonOf(message),
      messageMetadata: {
        status: message.status,
        finish_reason: message.finish_reason,
        model: message.model,
        usage: message.usage,
        error: message.error,
        ...(bookmark === undefined ? {} : { d1_bookmark: bookmark }),
      },
    });
    if (message.status === "cancelled")
      out.push({ type: "abort", reason: message.error?.message ?? "The answer was stopped." });
    else if (message.status !== "completed")
      out.push({ type: "error", errorText: message.error?.message ?? `The answer ended ${message.status}.` });
    return out;
  }
}

/** What `full` holds after the `sent` prefix ("" when nothing, or when `sent` is not its prefix). */
function rest(full: string | null, sent: string): string {
  if (full === null || !full.startsWith(sent)) return "";
  return full.slice(sent.length);
}

/** A stored call's arguments (always a JSON object text, API.md §2.2) as a value; undefined when not JSON. */
function parseArguments(text: string): JsonValue | undefined {
  try {
    return JSON.parse(text) as JsonValue;
  } catch {
    return undefined;
  }
}

const FINISH_REASONS: Readonly<Record<string, UiFinishReason>> = {
  stop: "stop",
  length: "length",
  tool_calls: "tool-calls",
  content_filter: "content-filter",
};

/** DashScope's `finish_reason` in the AI SDK's words; a failed or interrupted answer is `error`. */
function finishReasonOf(message: Message): UiFinishReason {
  if (message.status === "failed" || message.status === "interrupted") return "error";
  if (message.status === "cancelled") return "other";
  return FINISH_REASONS[message.finish_reason ?? ""] ?? "other";
}
