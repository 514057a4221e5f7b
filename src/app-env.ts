import type { Config } from "./config";

/** Hono's environment for every route and middleware of the Worker. */
export interface AppEnv {
  Bindings: Env;
  Variables: {
    requestId: string;
    config: Config;
    /** The authenticated user (`sub` of the JWT); set by the auth middleware. */
    userId: string;
    /** The user's rate-limit tier, on routes behind the turn rate limiter. */
    rateLimitTier: import("./config").RateLimitTier;
  };
}
