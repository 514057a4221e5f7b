import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { withLogContext } from "../log/context";

/** Every log line written while handling the request carries its `request_id` (set by `requestId()` before). */
export const logContext: MiddlewareHandler<AppEnv> = (c, next) =>
  withLogContext({ request_id: c.get("requestId") }, next);
