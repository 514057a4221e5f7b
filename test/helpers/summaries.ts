import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { call, standInRequests, type UpstreamRequestBody, type UpstreamRequestMessage } from "./api";

/** The summary model of the `summaries` test project: the stand-in's digest model (vitest.config.ts). */
export const SUMMARY_MODEL = env.SUMMARY_MODEL;

/** qwen-tiny-context: 3,072-token window, 2,048 input tokens (vitest.config.ts); budget 2,048 with max_tokens 256. */
export const TINY = "qwen-tiny-context";
export const TINY_BUDGET = 2048;

/** What the Worker puts before the summary's text (src/chat/summary-message.ts). */
export const SUMMARY_HEADING = "Summary of the earlier part of this conversation";

export interface Answer {
  id: string;
  status: string;
  usage: { prompt_tokens: number; completion_tokens: number; cached_tokens: number };
  tool_calls: { id: string }[] | null;
}

/** `chars` characters of prose, unique to `label`. */
export const prose = (label: string, chars: number) =>
  `${label}: ${"The ferry leaves at dawn and the harbour wakes slowly. ".repeat(Math.ceil(chars / 55))}`.slice(
    0,
    chars,
  );

/** One non-streamed turn; returns the completed answer. */
export async function turn(
  userId: string,
  conversationId: string,
  body: Record<string, unknown>,
): Promise<Answer> {
  const res = await call(userId, "POST", `/conversations/${conversationId}/messages`, {
    parameters: { max_tokens: 256 },
    ...body,
    stream: false,
  });
  const json = (await res.json()) as { assistant_message: Answer };
  expect(res.status, JSON.stringify(json)).toBe(200);
  expect(json.assistant_message.status).toBe("completed");
  return json.assistant_message;
}

/** The turn's own upstream body for `tag` (a summary call quoting the turn carries its tag too). */
export async function turnBody(tag: string): Promise<UpstreamRequestBody> {
  const requests = (await standInRequests(tag)).filter((r) => r.model !== SUMMARY_MODEL);
  expect(requests).toHaveLength(1);
  return requests[0]!.body;
}

/** The summary calls the stand-in received among requests tagged `tag`. */
export const summaryCalls = async (tag: string) =>
  (await standInRequests(tag)).filter((r) => r.model === SUMMARY_MODEL);

/** The text of a message (string content, or its text parts joined). */
export const textOf = (m: UpstreamRequestMessage | undefined) =>
  typeof m?.content === "string"
    ? m.content
    : Array.isArray(m?.content)
      ? (m.content as { text?: string }[]).map((p) => p.text ?? "").join("")
      : "";

/**
 * The running summary of a prompt (from its heading on), or undefined. It travels inside the one
 * `system` message, after the system prompt; no other message may be a `system` one.
 */
export function summaryOf(body: UpstreamRequestBody): string | undefined {
  expect(body.messages.slice(1).filter((m) => m.role === "system")).toEqual([]);
  const system = body.messages[0]?.role === "system" ? textOf(body.messages[0]) : "";
  const at = system.indexOf(SUMMARY_HEADING);
  return at < 0 ? undefined : system.slice(at);
}

/** Whether `next` starts with every message of `prev`, byte for byte. */
export const extendsPrompt = (prev: UpstreamRequestBody, next: UpstreamRequestBody) =>
  JSON.stringify(next.messages.slice(0, prev.messages.length)) === JSON.stringify(prev.messages);
