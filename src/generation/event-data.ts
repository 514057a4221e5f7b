/**
 * The `data` of the answer stream's events (`../shared/API.md` §2.1): a JSON object whose first key
 * is `type`, the event's name, so a client or a generated decoder can tell the payloads apart from
 * `data` alone. Every event is written through {@link eventDataJson}: live ones by
 * `EventBroadcast.publish`, stored terminal ones by the conversation's object.
 */

import type { Message } from "../store/types";

/** The answer stream's event names. */
export type AnswerEventName = "turn.started" | "message.delta" | "message.completed" | "message.failed";

/**
 * The JSON text of an event's data: `{"type":"<event>", ...payload}`. The payload's own keys follow
 * `type` in their order; it must not have a `type` of its own (the type forbids it).
 */
export function eventDataJson<P extends object>(event: AnswerEventName, payload: EventPayload<P>): string {
  return JSON.stringify({ type: event, ...payload });
}

/** An event's payload: any object without a top-level `type`. */
export type EventPayload<P extends object> = P & { type?: never };

/**
 * The terminal event of a finished answer as stored and replayed (`message.completed` for a
 * `completed` answer, else `message.failed`), with the data its live twin was published with:
 * `d1_bookmark` when a D1 bookmark at least as new as the answer's store is known (tagged with
 * its shard, store/sessions.ts `tagBookmark`).
 */
export function terminalEventFrame(
  id: number,
  message: Message,
  bookmark: string | null = null,
): { id: number; event: AnswerEventName; data: string } {
  const event = message.status === "completed" ? "message.completed" : "message.failed";
  return {
    id,
    event,
    data: eventDataJson(event, bookmark === null ? { message } : { message, d1_bookmark: bookmark }),
  };
}

/** What {@link eventDataJson} writes first: a stored event data that starts so already names its event. */
const TYPED_PREFIX = '{"type":';

/**
 * An event's stored data as it is sent today: events logged before `type` existed (their answers
 * are kept for `EVENT_LOG_RETENTION_SECONDS`, 1 day by default) gain it on replay; data that has it
 * is returned as is without being parsed. Data that is not a JSON object is returned unchanged.
 */
export function withEventType(event: string, json: string): string {
  if (json.startsWith(TYPED_PREFIX) || !isAnswerEventName(event)) return json;
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch {
    return json;
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload) || "type" in payload)
    return json;
  return eventDataJson(event, payload);
}

const NAMES: ReadonlySet<string> = new Set<AnswerEventName>([
  "turn.started",
  "message.delta",
  "message.completed",
  "message.failed",
]);

function isAnswerEventName(name: string): name is AnswerEventName {
  return NAMES.has(name);
}
