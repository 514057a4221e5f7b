import * as z from "zod";

const usageCounters = {
  requests: z.int().min(0),
  prompt_tokens: z.int().min(0),
  completion_tokens: z.int().min(0),
  total_tokens: z.int().min(0),
  cached_tokens: z.int().min(0),
  reasoning_tokens: z.int().min(0),
  cost_usd: z.number().min(0).describe("Estimated cost at list prices."),
};

/** A user's usage by day and model (`GET /v1/usage`, and the operators' copy). */
export const usageReportSchema = z
  .object({
    from: z.iso.date(),
    to: z.iso.date(),
    data: z
      .array(z.object({ day: z.iso.date(), model: z.string(), ...usageCounters }))
      .describe("By UTC day and model, oldest first."),
    totals: z.object(usageCounters),
  })
  .describe("Token usage by day and model for the days `from`..`to` (inclusive, UTC).");

export type UsageReport = z.infer<typeof usageReportSchema>;
/** The counters of one day and model, and of the totals. */
export type UsageCounters = UsageReport["totals"];
