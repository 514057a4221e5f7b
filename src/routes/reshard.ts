import type { Context } from "hono";
import type * as z from "zod";
import type { AppEnv } from "../app-env";
import { ApiError } from "../errors/api-error";
import { logInfo } from "../log/log";
import type { reshardBody } from "../openapi/bodies";
import { NoReshardError, reshardStep } from "../store/reshard-pass";

/** Users one step moves unless the body says otherwise. */
const DEFAULT_MAX_USERS = 10;
/**
 * No user's move starts after this much wall time in a step, so a step answers well within a
 * client's patience (scripts/reshard.mjs waits 120 s) while the Worker has no wall-time limit on
 * an HTTP request whose client is connected (developers.cloudflare.com/workers/platform/limits/).
 */
const STEP_BUDGET_MS = 20_000;

/**
 * `POST /admin/v1/reshard`: one step of moving users to the shards added by a reshard
 * (store/reshard-pass.ts); `npm run reshard` calls it until done. 409 `conflict` when
 * `RESHARD_FROM` is not set.
 */
export async function reshardHandler(
  c: Context<
    AppEnv,
    "/reshard",
    { in: { json: z.input<typeof reshardBody> }; out: { json: z.output<typeof reshardBody> } }
  >,
): Promise<Response> {
  const body = c.req.valid("json");
  try {
    const step = await reshardStep(
      c.env,
      body.cursor ?? null,
      body.max_users ?? DEFAULT_MAX_USERS,
      STEP_BUDGET_MS,
    );
    logInfo("reshard.step", {
      moved: step.moved.length,
      busy: step.busy.length,
      failed: step.failed.length,
      scanned: step.scanned,
      queries: step.queries,
    });
    return c.json(step);
  } catch (err) {
    if (err instanceof NoReshardError) throw new ApiError(409, "conflict", err.message);
    throw err;
  }
}
