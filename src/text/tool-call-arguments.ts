/**
 * A tool call's `arguments` as DashScope takes it back in a request's history, and as edge-chat
 * stores and returns it (API.md §2.2): JSON object text.
 *
 * DashScope parses the arguments of every tool call in the history and rejects the whole request
 * when one is not JSON (400 `The "function.arguments" parameter of the code model must be in JSON
 * format.`). Models stream a call without arguments as `"arguments": ""` (PROTOCOL §5.1, patterns
 * 2 and 3 open with it), and a call cut off by `max_tokens`, a stop or a failure ends mid-object.
 * Here, not in `dashscope/`, because `store/` repairs rows stored before this rule with it too.
 */

/** The shape these functions need of a tool call (DashScope's `ToolCall`, or a stored one). */
export interface ToolCallLike {
  id?: unknown;
  function?: { name?: unknown; arguments?: unknown } | null;
}

/**
 * `"{}"` for empty or blank text, the text unchanged when it is a JSON object, and `null`
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
export function completeToolCalls<T extends ToolCallLike>(calls: readonly T[]): T[] {
  let changed = false;
  const out: T[] = [];
  for (const call of calls) {
    const fn = call?.function;
    const args = typeof fn?.arguments === "string" ? objectArguments(fn.arguments) : null;
    const named =
      typeof call?.id === "string" && call.id !== "" && typeof fn?.name === "string" && fn.name !== "";
    if (args === null || !named) {
      changed = true;
      continue;
    }
    if (args === fn?.arguments) out.push(call);
    else {
      changed = true;
      out.push({ ...call, function: { ...fn, arguments: args } });
    }
  }
  return changed ? out : (calls as T[]);
}

/**
 * The calls with `""` arguments as `"{}"`, everything else as it is (the same array when nothing
 * changed). For answers relayed to a client that keeps its own history (`/v1/chat/completions`):
 * it sees a cut-off call as such (with `finish_reason: "length"`), but a call without arguments
 * must not come back as text DashScope rejects.
 */
export function emptyArgumentsAsObject<T extends ToolCallLike>(calls: readonly T[]): T[] {
  if (!calls.some((call) => isBlank(call.function?.arguments))) return calls as T[];
  return calls.map((call) =>
    isBlank(call.function?.arguments) ? { ...call, function: { ...call.function, arguments: "{}" } } : call,
  );
}

const isBlank = (text: unknown) => typeof text === "string" && text.trim() === "";
