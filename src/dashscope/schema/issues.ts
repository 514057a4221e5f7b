import type { z } from "zod";
import { truncateText } from "../../text/well-formed";

/** A validation failure as the API reports it: a sentence, and the dotted path of the field at fault. */
export interface SchemaError {
  message: string;
  param: string;
}

type Issue = z.core.$ZodIssue;
type Path = readonly PropertyKey[];

const MAX_KEY_CHARS = 64;
/** zod's own message for a union none of whose options matched, when no custom one was given. */
const DEFAULT_UNION_MESSAGE = "Invalid input";

/**
 * Turns the first zod issue into a {@link SchemaError}: a human sentence naming the field,
 * and `param` as a dotted path (`messages.2.tool_call_id`), prefixed with `paramPrefix`
 * (`parameters.temperature`). Values from the request are never echoed, only key names.
 */
export function describeIssue(issue: Issue, paramPrefix?: string): SchemaError {
  const resolved = resolveUnion(issue, []);
  const path = [...(paramPrefix ? [paramPrefix] : []), ...resolved.path];
  if (resolved.issue.code === "unrecognized_keys") {
    const keys = resolved.issue.keys.map(shortKey);
    const param = formatPath([...path, resolved.issue.keys[0] ?? ""]);
    const list = keys.map((k) => `"${k}"`).join(", ");
    return {
      message: keys.length === 1 ? `Unknown parameter: ${list}.` : `Unknown parameters: ${list}.`,
      param,
    };
  }
  const param = formatPath(path);
  const subject = param ? `"${param}"` : "The request body";
  return { message: `${subject} ${predicate(resolved.issue)}.`, param };
}

/**
 * Unions report every option's failure. When exactly one option got past the value's type
 * (e.g. `content` was an array of parts, so the string option failed at once and the array
 * option at `0.type`, or on its length), that issue explains the mistake; otherwise the
 * union's own message does.
 */
function resolveUnion(issue: Issue, prefix: Path): { issue: Issue; path: PropertyKey[] } {
  const path = [...prefix, ...issue.path];
  if (issue.code !== "invalid_union" || issue.errors.length === 0) return { issue, path };
  const plausible = issue.errors.filter((branch) => {
    const first = branch[0];
    return (
      first !== undefined && (first.path.length > 0 || first.code === "too_big" || first.code === "too_small")
    );
  });
  const only = plausible.length === 1 ? plausible[0]![0] : undefined;
  return only ? resolveUnion(only, path) : { issue, path };
}

function predicate(issue: Issue): string {
  switch (issue.code) {
    case "invalid_type":
      // zod reports `input` only when parsing with `reportInput: true`; without it a missing
      // field and a wrong type look alike, and naming the expected type is right for both.
      if ("input" in issue && issue.input === undefined) return "is required";
      return `must be ${TYPE_NAMES[issue.expected] ?? `of type ${issue.expected}`}`;
    case "too_small":
      return sizePredicate(
        issue.origin,
        issue.exact ? "exactly" : "at least",
        Number(issue.minimum),
        issue.inclusive !== false,
        "greater than",
      );
    case "too_big":
      return sizePredicate(
        issue.origin,
        issue.exact ? "exactly" : "at most",
        Number(issue.maximum),
        issue.inclusive !== false,
        "less than",
      );
    case "invalid_value":
      return issue.values.length === 1
        ? `must be ${JSON.stringify(issue.values[0])}`
        : `must be one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`;
    case "invalid_union":
      if (issue.discriminator !== undefined && "options" in issue && issue.options) {
        const options = issue.options.map((v) => JSON.stringify(v));
        return options.length === 1 ? `must be ${options[0]}` : `must be one of ${options.join(", ")}`;
      }
      return issue.message === DEFAULT_UNION_MESSAGE ? "has an invalid value" : issue.message;
    case "invalid_format":
      return issue.message.startsWith("must") ? issue.message : `has an invalid format (${issue.format})`;
    case "custom":
      return issue.message;
    case "not_multiple_of":
      return `must be a multiple of ${String(issue.divisor)}`;
    case "invalid_key":
      return "has a key that is not allowed";
    case "invalid_element":
      return "has an element that is not allowed";
    default:
      return "has an invalid value";
  }
}

function sizePredicate(
  origin: string,
  bound: string,
  limit: number,
  inclusive: boolean,
  comparison: string,
): string {
  switch (origin) {
    case "array":
    case "set":
      return `must contain ${bound} ${limit} item${limit === 1 ? "" : "s"}`;
    case "string":
      if (bound === "at least" && limit === 1) return "must not be empty";
      return `must be ${bound} ${limit} character${limit === 1 ? "" : "s"} long`;
    case "file":
      return `must be ${bound} ${limit} byte${limit === 1 ? "" : "s"}`;
    default:
      // Numbers: "at most 5" reads as a count, so bounds of a value are comparisons.
      if (bound === "exactly") return `must be ${limit}`;
      return `must be ${comparison}${inclusive ? " or equal to" : ""} ${limit}`;
  }
}

const TYPE_NAMES: Partial<Record<string, string>> = {
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "a boolean",
  array: "an array",
  object: "an object",
  record: "an object",
  tuple: "an array",
  null: "null",
};

/** Dotted path; keys come from the request, so any lone surrogate in one is replaced. */
function formatPath(path: Path): string {
  return path
    .map((segment) =>
      (typeof segment === "symbol" ? (segment.description ?? "") : String(segment)).toWellFormed(),
    )
    .join(".");
}

function shortKey(key: string): string {
  return key.length > MAX_KEY_CHARS ? `${truncateText(key, MAX_KEY_CHARS)}…` : key.toWellFormed();
}
