import type { ToolCall } from "./types";

/**
 * A tool call's `arguments` as DashScope takes it back in a request's history: JSON object text.
 *
 * DashScope parses the arguments of every tool call in the history and rejects the whole request
 * when one is not JSON (400 `The "function.arguments" parameter of the code model must be in JSON
 * format.`). Models stream a call without arguments as `"arguments": ""` (PROTOCOL §5.1, pattern 2
 * and 3 open with it), and a call cut off by `max_tokens`, a stop or a failure ends mid-object.
 *
 * Returns `"{}"` for empty or blank text, the text unchanged when it is a JSON object, and `null`
 * otherwise (cut off, malformed, or JSON that is not an object): such a call is incomplete.
 */
export function objectArguments(text: string): string | null {
  if (text.trim() === "") return "{}";
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return null;
  }
  return typeof parsed === "object" && parsed !== null && !Array.isArray(parsed) ? text : null;
}

/**
 * The calls of an answer that can be stored and replayed: each with an id, a name and object
 * arguments (normalized by {@link objectArguments}), in their order. Incomplete calls are left
 * out: a call that is missing any of these can be neither executed nor sent back to DashScope.
 * Returns the same array when nothing changed.
 */
export function completeToolCalls(calls: readonly ToolCall[]): ToolCall[] {
  let changed = false;
  const out: ToolCall[] = [];
  for (const call of calls) {
    const args =
      typeof call.function?.arguments === "string" ? objectArguments(call.function.arguments) : null;
    if (args === null || !call.id || !call.function.name) {
      changed = true;
      continue;
    }
    if (args === call.function.arguments) out.push(call);
    else {
      changed = true;
      out.push({ ...call, function: { ...call.function, arguments: args } });
    }
  }
  return changed ? out : (calls as ToolCall[]);
}

/**
 * The calls with `""` arguments as `"{}"`, everything else as it is (the same array when nothing
 * changed). For answers relayed to a client that keeps its own history (`/v1/chat/completions`):
 * it sees a cut-off call as such (with `finish_reason: "length"`), but a call without arguments
 * must not come back as text DashScope rejects.
 */
export function emptyArgumentsAsObject<T extends ToolCall>(calls: readonly T[]): T[] {
  if (!calls.some((call) => isBlank(call.function?.arguments))) return calls as T[];
  return calls.map((call) =>
    isBlank(call.function?.arguments) ? { ...call, function: { ...call.function, arguments: "{}" } } : call,
  );
}

const isBlank = (text: unknown) => typeof text === "string" && text.trim() === "";
