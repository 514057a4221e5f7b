import { Hono } from "hono";
import type { AppEnv } from "../app-env";

/** Liveness: answers without touching D1, KV or DashScope. */
export const healthRoutes = new Hono<AppEnv>().get("/healthz", (c) => c.json({ status: "ok" }));
