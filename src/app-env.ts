import type { Config } from "./config";
import type { UserSession } from "./store/sessions";

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
    /** The user's D1 session on their shard; set by the D1 session middleware after auth. */
    userD1: UserSession;
  };
}
