import { Hono } from "hono";
import type { AppEnv } from "../app-env";

export const conversationRoutes = new Hono<AppEnv>();
