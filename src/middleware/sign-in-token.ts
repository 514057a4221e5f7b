import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { hasApiKeyBearer } from "../auth/api-keys";
import { ApiError } from "../errors/api-error";

/**
 * Refuses a request made with an API key: 403 `forbidden` with `message`. For what only the user
 * may do, never a server acting for them (minting or revoking keys: a leaked key could outlive
 * its own revocation; deleting the account). Register it after the auth middleware.
 */
export function requireSignInToken(message: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (hasApiKeyBearer(c.req.header("authorization"))) throw new ApiError(403, "forbidden", message);
    await next();
  };
}
