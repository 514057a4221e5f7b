import { Hono } from "hono";
import { requestId } from "hono/request-id";
import type { AppEnv } from "./app-env";
import { loadConfig } from "./config";
import { requireAuth } from "./middleware/auth";
import { onError, onNotFound } from "./middleware/error-handler";
import { conversationRoutes } from "./routes/conversations";
import { devRoutes } from "./routes/dev";
import { healthRoutes } from "./routes/health";
import { messageRoutes } from "./routes/messages";
import { usageRoutes } from "./routes/usage";

/** The edge-chat HTTP API (`../shared/API.md`): composition only; behaviour lives in the modules. */
export const app = new Hono<AppEnv>();

app.use("*", requestId());
app.use("*", async (c, next) => {
  c.set("config", loadConfig(c.env));
  await next();
});
app.onError(onError);
app.notFound(onNotFound);

app.route("/", healthRoutes);
app.route("/", devRoutes);
app.use("/v1/*", requireAuth);
app.route("/v1", conversationRoutes);
app.route("/v1", messageRoutes);
app.route("/v1", usageRoutes);
