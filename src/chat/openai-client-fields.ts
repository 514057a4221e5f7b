/**
 * Fields the official OpenAI SDKs keep on an assistant message they built or parsed, which
 * applications send back unchanged in the next request's history (`messages.push(message)`).
 * They carry nothing DashScope could use when empty: the stream helper's `parsed` (structured
 * output it parsed client-side), `refusal` (OpenAI-only), `audio`/`function_call` placeholders and
 * `annotations` (web-search citations).
 */
const EMPTY_WHEN_UNUSED = ["refusal", "parsed", "audio", "function_call", "annotations"] as const;

const isEmpty = (value: unknown) => value === null || (Array.isArray(value) && value.length === 0);

/**
 * Returns the request body with the empty client-side fields of assistant messages removed
 * (see {@link EMPTY_WHEN_UNUSED}), so an SDK's own message round-trips without glue code. Fields
 * that hold a value are kept, and the request schema rejects them by name. Does not mutate `body`.
 */
export function dropEmptyClientFields(body: unknown): unknown {
  if (typeof body !== "object" || body === null || Array.isArray(body)) return body;
  const messages = (body as { messages?: unknown }).messages;
  if (!Array.isArray(messages)) return body;
  let changed = false;
  const cleaned = messages.map((message: unknown) => {
    if (
      typeof message !== "object" ||
      message === null ||
      (message as { role?: unknown }).role !== "assistant"
    )
      return message;
    const record = message as Record<string, unknown>;
    const drop = EMPTY_WHEN_UNUSED.filter((key) => key in record && isEmpty(record[key]));
    if (drop.length === 0) return message;
    changed = true;
    const copy = { ...record };
    for (const key of drop) delete copy[key];
    return copy;
  });
  return changed ? { ...(body as Record<string, unknown>), messages: cleaned } : body;
}
