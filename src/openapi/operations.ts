/** Building blocks of the document's operations: responses, bodies, parameters. */
import { type ComponentName, ref } from "./components";

/** Status codes and what they mean on every route that can return them. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: "Invalid request (`invalid_request`); `param` names the field at fault.",
  401: "Missing or invalid bearer token (`unauthorized`).",
  403: "Not allowed with this credential (`forbidden`).",
  404: "Not found (`not_found`); another user's resource is also 404.",
  409: "Conflict (`conflict`, or `turn_in_progress` while the conversation is answering).",
  413: "The request body is too large (`payload_too_large`).",
  422: "Blocked by the model provider's content moderation (`content_filtered`).",
  429: "Rate limited (`rate_limited`) or quota exhausted (`quota_exceeded`); see `Retry-After`.",
  500: "Internal error (`internal_error`).",
  502: "The model provider failed (`upstream_error`).",
  504: "The model provider did not answer in time (`upstream_timeout`).",
};

/** Which error envelope a route uses. */
export type Envelope = "Error" | "OpenAIError";

const retryAfterHeader = {
  "Retry-After": { description: "Seconds to wait before retrying.", schema: { type: "integer", minimum: 1 } },
};

/** The error responses of an operation (500 always included), in `envelope`. */
export function errorResponses(statuses: number[], envelope: Envelope): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const status of [...statuses, 500]) {
    out[String(status)] = {
      description: STATUS_TEXT[status] ?? "Error.",
      ...(status === 429 ? { headers: retryAfterHeader } : {}),
      content: { "application/json": { schema: ref(envelope) } },
    };
  }
  return out;
}

/** `application/json` content of a component. */
export const json = (name: ComponentName) => ({ "application/json": { schema: ref(name) } });

/** A required JSON request body of a component. */
export const jsonBody = (name: ComponentName, description?: string) => ({
  required: true,
  ...(description ? { description } : {}),
  content: json(name),
});

/** The `{id}` path parameter. */
export const pathId = (what: string) => ({
  name: "id",
  in: "path",
  required: true,
  description: `The ${what}'s id.`,
  schema: { type: "string" },
});

/** `limit` and `cursor` of keyset-paginated lists. */
export const pageParameters = [
  {
    name: "limit",
    in: "query",
    required: false,
    description: "Page size.",
    schema: { type: "integer", minimum: 1, maximum: 100, default: 20 },
  },
  {
    name: "cursor",
    in: "query",
    required: false,
    description: "`next_cursor` of the previous page.",
    schema: { type: "string" },
  },
];
