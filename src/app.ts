import { Hono } from "hono";
import { requestId } from "hono/request-id";
import type { AppEnv } from "./app-env";
import { loadConfig } from "./config";
import { requireAuth } from "./middleware/auth";
import { corsForAllowedOrigins } from "./middleware/cors";
import { userD1Session } from "./middleware/d1-session";
import { onError, onNotFound } from "./middleware/error-handler";
import { logContext } from "./middleware/log-context";
import { rateLimitTurns } from "./middleware/rate-limit";
import { accountRoutes } from "./routes/account";
import { adminRoutes } from "./routes/admin";
import { apiKeyRoutes } from "./routes/api-keys";
import { conversationRoutes } from "./routes/conversations";
import { docsRoutes } from "./routes/docs";
import { exportRoutes } from "./routes/export";
import { signedFileContent } from "./routes/file-content";
import { fileRoutes } from "./routes/files";
import { healthRoutes } from "./routes/health";
import { messageRoutes } from "./routes/messages";
import { openAiErrorEnvelope, openaiRoutes } from "./routes/openai";
import { searchRoutes } from "./routes/search";
import { syncRoutes } from "./routes/sync";
import { uiConversationRoutes } from "./routes/ui-conversations";
import { usageRoutes } from "./routes/usage";

/** The edge-chat HTTP API (`../shared/API.md`): composition only; behaviour lives in the modules. */
export const app = new Hono<AppEnv>();

app.use("*", requestId());
app.use("*", logContext);
app.use("*", async (c, next) => {
  c.set("config", loadConfig(c.env));
  await next();
});
// Before every route and auth: a browser's preflight carries no credentials.
app.use("*", corsForAllowedOrigins);
app.onError(onError);
app.notFound(onNotFound);

app.route("/", healthRoutes);
app.route("/", docsRoutes);
// Before auth, so that 401s on the OpenAI-compatible paths also come in OpenAI's envelope.
app.use("/v1/chat/completions", openAiErrorEnvelope);
app.use("/v1/models", openAiErrorEnvelope);
app.use("/v1/models/*", openAiErrorEnvelope);
// A signed file URL (FILE_URL_BASE) is served without a bearer token; any other request goes on.
app.get("/v1/files/:id/content", signedFileContent);
app.use("/v1/*", requireAuth);
// The user's D1 session: reads at the client's x-d1-bookmark, the latest bookmark on the response.
app.use("/v1/*", userD1Session);
// Turns cost money: per-user requests per minute (POSTs only; GETs on these paths pass).
app.use("/v1/conversations/:id/messages", rateLimitTurns({ deferToTurn: true }));
app.use("/v1/chat/completions", rateLimitTurns());
// The AI SDK's useChat (API.md §2.5): its sends are turns.
app.use("/v1/ui/conversations", rateLimitTurns({ deferToTurn: true }));
app.route("/v1", conversationRoutes);
app.route("/v1", messageRoutes);
app.route("/v1", openaiRoutes);
app.route("/v1", apiKeyRoutes);
app.route("/v1", usageRoutes);
app.route("/v1", exportRoutes);
app.route("/v1", syncRoutes);
app.route("/v1", accountRoutes);
app.route("/v1", searchRoutes);
app.route("/v1", fileRoutes);
app.route("/v1", uiConversationRoutes);
// Operator routes: the admin token only, never a user's JWT or API key (and not under /v1).
app.route("/admin/v1", adminRoutes);
