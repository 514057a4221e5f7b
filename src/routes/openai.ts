import { Hono, type MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { type CompletionFiles, checkCompletionFiles } from "../chat/completion-files";
import { type CompletionCaller, completeChatCompletion, streamChatCompletion } from "../chat/completions";
import { type RequestFilePart, takeFileParts } from "../chat/file-parts";
import { listModels } from "../chat/model-list";
import { dropEmptyClientFields } from "../chat/openai-client-fields";
import { toOpenAiErrorBody } from "../chat/openai-error";
import { createDashScopeClient } from "../dashscope/client";
import { type ChatCompletionRequest, parseChatCompletionRequest } from "../dashscope/schema";
import { notFound } from "../errors/api-error";
import { toInvalidRequest } from "../errors/invalid-request";
import { jsonBody } from "../middleware/json-body";
import type { ModelList } from "../resources/model";
import { SSE_HEADERS } from "../sse/response";

/**
 * Rewrites an error response in our envelope (`{error:{code,message,param?}}`) into OpenAI's
 * (`{error:{message,type,param,code}}`), keeping its status and headers (`Retry-After`,
 * `WWW-Authenticate`), so the official SDKs raise their usual typed exceptions. Register it before
 * the auth middleware on the OpenAI-compatible paths only: Hono runs the error handler where the
 * error was thrown and leaves the finished response in `c.res` for the middleware around it.
 */
export const openAiErrorEnvelope: MiddlewareHandler<AppEnv> = async (c, next) => {
  await next();
  const res = c.res;
  if (res.status < 400 || !(res.headers.get("content-type") ?? "").includes("application/json")) return;
  let body: unknown;
  try {
    body = await res.clone().json();
  } catch {
    return;
  }
  const error = (body as { error?: { code?: unknown; message?: unknown; param?: unknown } } | null)?.error;
  if (!error || typeof error.code !== "string" || typeof error.message !== "string" || "type" in error)
    return;
  const headers = new Headers(res.headers);
  headers.delete("content-length");
  c.res = undefined as unknown as Response; // replace, rather than merge headers into, the old response
  c.res = Response.json(
    toOpenAiErrorBody({
      code: error.code,
      message: error.message,
      param: typeof error.param === "string" ? error.param : null,
    }),
    { status: res.status, headers },
  );
};

/**
 * The DashScope request of `POST /chat/completions` (its nesting, size and cross-field rules
 * included), after the empty fields the OpenAI SDKs echo back on assistant messages are dropped.
 */
function parseCompletionRequest(body: unknown): {
  request: ChatCompletionRequest;
  fileParts: RequestFilePart[];
} {
  // File parts are edge-chat's, not DashScope's: taken out (checked) before the schema sees the body.
  const taken = takeFileParts(dropEmptyClientFields(body));
  if ("error" in taken) throw toInvalidRequest(taken.error);
  const parsed = parseChatCompletionRequest(taken.body);
  if (!parsed.ok) throw toInvalidRequest(parsed.error);
  return { request: parsed.value, fileParts: taken.parts };
}

/**
 * The OpenAI-compatible routes, mounted at `/v1` behind auth: `POST /chat/completions` (the
 * DashScope request, `n` up to 4, streamed or not, passed through faithfully; a request DashScope
 * takes only as a stream is streamed upstream even when `stream` is not true, and answered with the
 * assembled `chat.completion`, see `completeChatCompletion`), `GET /models` and
 * `GET /models/{id}` in OpenAI's list shape. Errors use OpenAI's envelope ({@link openAiErrorEnvelope}).
 */
export const openaiRoutes = new Hono<AppEnv>()
  .post("/chat/completions", jsonBody(parseCompletionRequest), async (c) => {
    const config = c.get("config");
    const { request, fileParts } = c.req.valid("json");
    const userFiles = await checkCompletionFiles(
      c.get("userD1").db,
      c.get("userId"),
      request,
      fileParts,
      config,
    );
    const files: CompletionFiles = { parts: fileParts, files: userFiles, bucket: c.env.FILES };
    const caller: CompletionCaller = {
      userId: c.get("userId"),
      requestId: c.get("requestId"),
      db: c.get("userD1").db,
      config,
      waitUntil: (promise) => c.executionCtx.waitUntil(promise),
    };
    const client = createDashScopeClient(config);
    if (request.stream === true) {
      const stream = await streamChatCompletion(client, request, caller, {
        pingIntervalMs: config.ssePingIntervalMs,
        startDeadlineMs: config.streamStartDeadlineMs,
        files,
      });
      return new Response(stream, { headers: SSE_HEADERS });
    }
    return c.json(await completeChatCompletion(client, request, caller, { files }));
  })
  .get("/models", (c) => {
    const list: ModelList = { object: "list", data: listModels(c.get("config")) };
    return c.json(list);
  })
  .get("/models/:id", (c) => {
    const model = listModels(c.get("config")).find((m) => m.id === c.req.param("id"));
    if (!model) throw notFound("Model");
    return c.json(model);
  });
