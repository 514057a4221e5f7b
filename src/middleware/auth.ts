import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { ApiError } from "../errors/api-error";

/** Placeholder until JWT verification lands: rejects everything. */
export const requireAuth: MiddlewareHandler<AppEnv> = async () => {
  throw new ApiError(401, "unauthorized", "Authentication is required.");
};
