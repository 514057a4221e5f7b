import { emptyArgumentsAsObject } from "../text/tool-call-arguments";
import type {
  ChatCompletion,
  ChatCompletionChunk,
  ChunkChoice,
  ChunkDelta,
  CompletionMessage,
  FinishReason,
  Logprobs,
  LogprobToken,
  StreamErrorInfo,
  StreamEvent,
  ToolCall,
  ToolCallFragment,
  Usage,
} from "./types";

/** Omni output audio rebuilt from `delta.audio` pieces (PROTOCOL §4.1). */
export interface AccumulatedAudio {
  id: string | null;
  /** All `data` pieces concatenated: base64 of raw PCM s16le, mono, 24 kHz. */
  data: string;
  transcript: string;
  expires_at: number | null;
}

/** One choice rebuilt from its deltas. */
export interface AccumulatedChoice {
  index: number;
  role: "assistant";
  content: string;
  reasoning_content: string;
  /** Sorted by the fragments' `index`. */
  tool_calls: ToolCall[];
  /** Every content token's logprob entry, in order; null if no chunk carried any. */
  logprobs: Logprobs | null;
  audio: AccumulatedAudio | null;
  finish_reason: FinishReason | null;
}

/** The result of a streamed completion as far as it was received. */
export interface AccumulatedCompletion {
  id: string | null;
  model: string | null;
  created: number | null;
  /** Sorted by `index`. */
  choices: AccumulatedChoice[];
  usage: Usage | null;
  error: StreamErrorInfo | null;
  sawDone: boolean;
  /**
   * `completed` only when no error was seen, `[DONE]` arrived, and every choice (at least one) has a
   * `finish_reason`. Anything else — a mid-stream error, malformed data, EOF without `[DONE]` or
   * without a finish reason — is `interrupted`: the content is partial and must not be presented as
   * a complete answer.
   */
  status: "completed" | "interrupted";
}

interface ToolCallState {
  index: number;
  id: string;
  name: string;
  arguments: string;
}

interface ChoiceState {
  index: number;
  content: string;
  reasoning: string;
  toolCalls: Map<number, ToolCallState>;
  /** Target of a fragment that lacks `index` (see mergeToolCalls). */
  lastToolCall: ToolCallState | null;
  logprobs: LogprobToken[] | null;
  audio: AccumulatedAudio | null;
  finishReason: FinishReason | null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null;
}

function byIndex(a: { index: number }, b: { index: number }): number {
  return a.index - b.index;
}

/**
 * Rebuilds a streamed Chat Completion from its {@link StreamEvent}s.
 *
 * Deltas are merged per `choice.index`: `content`/`reasoning_content` concatenated (null = no change),
 * tool-call fragments merged by their `index` for every pattern of PROTOCOL §5.1 (first non-empty id
 * and name win, `arguments` concatenated), logprob entries appended, Omni audio concatenated, last
 * non-null `finish_reason` wins, `usage` taken from any chunk that carries one.
 *
 * Input is treated as untrusted JSON: fields of the wrong type are ignored rather than thrown on.
 * Once an error event or `[DONE]` has been seen, later events are ignored; so is everything after
 * {@link finish}.
 */
export class CompletionAccumulator {
  private id: string | null = null;
  private model: string | null = null;
  private created: number | null = null;
  private readonly choices = new Map<number, ChoiceState>();
  private usage: Usage | null = null;
  private error: StreamErrorInfo | null = null;
  private sawDone = false;
  private finished: AccumulatedCompletion | null = null;

  /** Applies one decoded event. */
  push(event: StreamEvent): void {
    if (this.finished !== null || this.error !== null || this.sawDone) return;
    switch (event.type) {
      case "chunk":
        this.applyChunk(event.chunk);
        return;
      case "error":
        this.error = event.error;
        return;
      case "done":
        this.sawDone = true;
        return;
    }
  }

  /**
   * Applies one choice's delta that comes without its chunk (deltas relayed earlier and read back
   * from a log), merged exactly as the same delta inside a chunk.
   */
  pushDelta(index: number, delta: ChunkDelta): void {
    if (this.finished !== null || this.error !== null || this.sawDone) return;
    this.applyChoice({ index, delta });
  }

  /** The state so far, with `status` as if the stream ended now. Builds fresh objects on each call. */
  snapshot(): AccumulatedCompletion {
    return this.finished ?? this.build();
  }

  /** Call at EOF: freezes and returns the result. Idempotent; later pushes are ignored. */
  finish(): AccumulatedCompletion {
    this.finished ??= this.build();
    return this.finished;
  }

  private applyChunk(chunk: ChatCompletionChunk): void {
    if (this.id === null && typeof chunk.id === "string") this.id = chunk.id;
    if (this.model === null && typeof chunk.model === "string") this.model = chunk.model;
    if (this.created === null && typeof chunk.created === "number") this.created = chunk.created;
    if (isObject(chunk.usage)) this.usage = chunk.usage;
    const choices = chunk.choices;
    if (!Array.isArray(choices)) return;
    for (let i = 0; i < choices.length; i++) {
      const choice = choices[i];
      if (isObject(choice)) this.applyChoice(choice);
    }
  }

  private applyChoice(choice: ChunkChoice): void {
    const index = typeof choice.index === "number" ? choice.index : 0;
    let state = this.choices.get(index);
    if (state === undefined) {
      state = {
        index,
        content: "",
        reasoning: "",
        toolCalls: new Map(),
        lastToolCall: null,
        logprobs: null,
        audio: null,
        finishReason: null,
      };
      this.choices.set(index, state);
    }
    const delta = choice.delta;
    if (isObject(delta)) {
      if (typeof delta.content === "string") state.content += delta.content;
      if (typeof delta.reasoning_content === "string") state.reasoning += delta.reasoning_content;
      if (Array.isArray(delta.tool_calls)) mergeToolCalls(state, delta.tool_calls);
      if (isObject(delta.audio)) mergeAudio(state, delta.audio);
    }
    const logprobs = choice.logprobs;
    if (isObject(logprobs) && Array.isArray(logprobs.content) && logprobs.content.length > 0) {
      state.logprobs ??= [];
      for (const entry of logprobs.content) state.logprobs.push(entry);
    }
    if (typeof choice.finish_reason === "string" && choice.finish_reason.length > 0) {
      state.finishReason = choice.finish_reason;
    }
  }

  private build(): AccumulatedCompletion {
    const choices: AccumulatedChoice[] = [];
    for (const state of this.choices.values()) choices.push(buildChoice(state));
    choices.sort(byIndex);
    const completed =
      this.error === null &&
      this.sawDone &&
      choices.length > 0 &&
      choices.every((choice) => choice.finish_reason !== null);
    return {
      id: this.id,
      model: this.model,
      created: this.created,
      choices,
      usage: this.usage,
      error: this.error,
      sawDone: this.sawDone,
      status: completed ? "completed" : "interrupted",
    };
  }
}

function newToolCall(state: ChoiceState, index: number): ToolCallState {
  const call: ToolCallState = { index, id: "", name: "", arguments: "" };
  state.toolCalls.set(index, call);
  return call;
}

/**
 * Merges tool-call fragments by `index`. Continuations send `id: ""` or no id, `name: null` or no
 * name, an empty `function: {}`, or no `arguments`; all of these mean "no change".
 */
function mergeToolCalls(state: ChoiceState, fragments: ToolCallFragment[]): void {
  for (const fragment of fragments) {
    if (!isObject(fragment)) continue;
    const fragmentId = typeof fragment.id === "string" ? fragment.id : "";
    let call: ToolCallState | undefined;
    if (typeof fragment.index === "number") {
      call = state.toolCalls.get(fragment.index) ?? newToolCall(state, fragment.index);
    } else {
      // DashScope always sends `index` (§5.1); should it ever be missing, a fragment with an id
      // not seen before starts a new call and anything else continues the latest call.
      if (fragmentId !== "") {
        for (const known of state.toolCalls.values()) if (known.id === fragmentId) call = known;
      }
      if (call === undefined && (fragmentId !== "" || state.lastToolCall === null)) {
        let next = 0;
        for (const known of state.toolCalls.keys()) if (known >= next) next = known + 1;
        call = newToolCall(state, next);
      }
      call ??= state.lastToolCall ?? newToolCall(state, 0);
    }
    if (call.id === "" && fragmentId !== "") call.id = fragmentId;
    const fn = fragment.function;
    if (isObject(fn)) {
      if (call.name === "" && typeof fn.name === "string") call.name = fn.name;
      if (typeof fn.arguments === "string") call.arguments += fn.arguments;
    }
    state.lastToolCall = call;
  }
}

function mergeAudio(state: ChoiceState, delta: Record<string, unknown>): void {
  state.audio ??= { id: null, data: "", transcript: "", expires_at: null };
  const audio = state.audio;
  if (audio.id === null && typeof delta.id === "string" && delta.id.length > 0) audio.id = delta.id;
  if (typeof delta.data === "string") audio.data += delta.data;
  if (typeof delta.transcript === "string") audio.transcript += delta.transcript;
  if (typeof delta.expires_at === "number") audio.expires_at = delta.expires_at;
}

function buildChoice(state: ChoiceState): AccumulatedChoice {
  const toolCalls: ToolCall[] = [];
  if (state.toolCalls.size > 0) {
    const calls = [...state.toolCalls.values()].sort(byIndex);
    for (const call of calls) {
      toolCalls.push({
        id: call.id,
        type: "function",
        function: { name: call.name, arguments: call.arguments },
      });
    }
  }
  return {
    index: state.index,
    role: "assistant",
    content: state.content,
    reasoning_content: state.reasoning,
    tool_calls: toolCalls,
    logprobs: state.logprobs ? { content: state.logprobs.slice() } : null,
    audio: state.audio ? { ...state.audio } : null,
    finish_reason: state.finishReason,
  };
}

/**
 * Builds the non-streaming `chat.completion` body from an accumulated stream, so a `stream:false`
 * request can be served from a streamed upstream call. Optional message fields are present only when
 * the stream produced them; a tool call streamed without arguments gets `"{}"` (see
 * {@link emptyArgumentsAsObject}); `system_fingerprint` is `null`, as DashScope documents it
 * ("currently fixed null", PROTOCOL.md §2.2, T10). Missing envelope fields (no chunk was received)
 * become `""`/`0`. Check `acc.status` first: an interrupted stream yields a body whose choices lack
 * a `finish_reason`.
 */
export function completionFromAccumulated(acc: AccumulatedCompletion): ChatCompletion {
  return {
    id: acc.id ?? "",
    object: "chat.completion",
    created: acc.created ?? 0,
    model: acc.model ?? "",
    choices: acc.choices.map((choice) => {
      const message: CompletionMessage = { role: "assistant", content: choice.content };
      if (choice.reasoning_content !== "") message.reasoning_content = choice.reasoning_content;
      if (choice.tool_calls.length > 0) message.tool_calls = emptyArgumentsAsObject(choice.tool_calls);
      if (choice.audio !== null) {
        const { id, data, transcript, expires_at } = choice.audio;
        message.audio = { data };
        if (id !== null) message.audio.id = id;
        if (transcript !== "") message.audio.transcript = transcript;
        if (expires_at !== null) message.audio.expires_at = expires_at;
      }
      return { index: choice.index, message, finish_reason: choice.finish_reason, logprobs: choice.logprobs };
    }),
    usage: acc.usage,
    system_fingerprint: null,
  };
}
