import { errorResponses } from "./operations";

/** The methods of the operations that write a user's rows. */
const WRITES = new Set(["post", "put", "patch", "delete"]);

/**
 * `paths` with a 503 response (`resharding`, `Retry-After`) on every write of a user's data
 * (`/v1/…` POST, PUT, PATCH and DELETE): during a reshard a user's writes are refused for the
 * seconds of their own move (store/reshard-routing.ts). Reads are served throughout. The
 * response is in the operation's own envelope (the one of its 500).
 */
export function withReshardingResponses(
  paths: Record<string, Record<string, unknown>>,
): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    Object.entries(paths).map(([path, item]) => [
      path,
      path.startsWith("/v1/")
        ? Object.fromEntries(
            Object.entries(item).map(([method, op]) => [
              method,
              WRITES.has(method) ? withResharding(op) : op,
            ]),
          )
        : item,
    ]),
  );
}

function withResharding(op: unknown): unknown {
  if (typeof op !== "object" || op === null || !("responses" in op)) return op;
  const responses = op.responses as Record<
    string,
    { content?: Record<string, { schema?: { $ref?: string } }> }
  >;
  if (responses["503"]) return op;
  const envelope = responses["500"]?.content?.["application/json"]?.schema?.$ref?.endsWith("/OpenAIError")
    ? "OpenAIError"
    : "Error";
  return { ...op, responses: { ...responses, ...errorResponses([503], envelope) } };
}
