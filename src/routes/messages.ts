import { Hono } from "hono";
import type { AppEnv } from "../app-env";

export const messageRoutes = new Hono<AppEnv>();
