import type { Config } from "../config";
import type { ModelEntry } from "../resources/model";
import { MODEL_CONTEXT_TOKENS } from "./models";

/** Who serves every model edge-chat forwards to. */
export const MODEL_OWNER = "alibaba-cloud";
/**
 * `created` of each listed model, in Unix seconds. DashScope publishes no creation times and the
 * field is required by OpenAI's shape, so it is a fixed 0 ("unknown") rather than an invented date.
 */
export const MODEL_CREATED_UNKNOWN = 0;

/**
 * The models this deployment offers: the built-in model table, the configured context-window
 * overrides (`MODEL_CONTEXT_TOKENS`) and the default model, each once, sorted by id.
 */
export function listModels(config: Pick<Config, "defaultModel" | "modelContextTokens">): ModelEntry[] {
  const ids = new Set([
    ...Object.keys(MODEL_CONTEXT_TOKENS),
    ...Object.keys(config.modelContextTokens),
    config.defaultModel,
  ]);
  return [...ids]
    .filter((id) => id !== "")
    .sort()
    .map((id) => ({ id, object: "model", created: MODEL_CREATED_UNKNOWN, owned_by: MODEL_OWNER }));
}
