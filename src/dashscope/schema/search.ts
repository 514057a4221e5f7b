import * as z from "zod";
import { WHEN_VALID } from "./when-valid";

export const SEARCH_STRATEGIES = ["turbo", "max", "agent", "agent_max"] as const;
/** Strategies that run their own multi-round retrieval; of the other options they accept only `enable_source`. */
export const AGENT_SEARCH_STRATEGIES: ReadonlySet<string> = new Set(["agent", "agent_max"]);
/** Most sites `assigned_site_list` may restrict a search to. */
export const MAX_ASSIGNED_SITES = 25;

/**
 * `search_options` of web search (`enable_search: true`). Fields beyond `forced_search`,
 * `search_strategy` and `enable_search_extension` are from DashScope's web-search guide.
 */
export const searchOptionsSchema = z
  .strictObject({
    forced_search: z.boolean().optional(),
    search_strategy: z.enum(SEARCH_STRATEGIES).optional(),
    enable_search_extension: z.boolean().optional(),
    /** Return the search sources alongside the answer. */
    enable_source: z.boolean().optional(),
    /** Mark citations in the answer (with `enable_source`). */
    enable_citation: z.boolean().optional(),
    citation_format: z.enum(["[<number>]", "[ref_<number>]"]).optional(),
    /** Stream the search results as the first chunk, before generation. */
    prepend_search_result: z.boolean().optional(),
    /** Only results from the last N days. */
    freshness: z
      .union([z.literal(7), z.literal(30), z.literal(180), z.literal(365)], {
        error: "must be 7, 30, 180 or 365 (days)",
      })
      .optional(),
    assigned_site_list: z.array(z.string().min(1)).max(MAX_ASSIGNED_SITES).optional(),
    intention_options: z.strictObject({ prompt_intervene: z.string().optional() }).optional(),
  })
  .superRefine((options, ctx) => {
    if (!options.search_strategy || !AGENT_SEARCH_STRATEGIES.has(options.search_strategy)) return;
    for (const key of Object.keys(options)) {
      if (key === "search_strategy" || key === "enable_source") continue;
      ctx.addIssue({
        code: "custom",
        path: [key],
        message: `is not available with search_strategy "${options.search_strategy}", which only supports "enable_source"`,
      });
    }
  }, WHEN_VALID);
