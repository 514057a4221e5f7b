import { timingSafeEqual } from "node:crypto";
import { sendCompletion } from "./completion.mjs";
import { reportCacheUsage } from "./context-cache.mjs";
import { deterministicCreated, deterministicUuid, sha256Hex } from "./determinism.mjs";
import { intOption, parseDirective } from "./directives.mjs";
import { DEFAULT_FAILURE, invalidParameter, NAMED_ERRORS, namedError } from "./errors.mjs";
import { fetchUrlImages, imageParts } from "./image-parts.mjs";
import { thinksFor } from "./model-modes.mjs";
import { finishEntry } from "./request-log.mjs";
import { planChoices, usageFor } from "./scenarios/plan.mjs";
import { streamChoices } from "./sse-stream.mjs";
import { estimatePromptTokens, maxInputTokens } from "./token-estimate.mjs";
import { validateRequest, wantsAudio } from "./validate.mjs";

/** The model name that always answers 404 `model_not_found`. */
export const MISSING_MODEL = "qwen-does-not-exist";
const DEFAULT_MIDSTREAM_AFTER_TOKENS = 3;
const FAULT_KEYS = ["error", "midstream", "disconnect", "hang", "hang_body", "stall"];

/**
 * @typedef {{ apiKey: string | undefined, ttftMs: number, interTokenMs: number, log: boolean,
 *   requestLog: ReturnType<typeof import("./request-log.mjs").createRequestLog>,
 *   contextCache: ReturnType<typeof import("./context-cache.mjs").createContextCache> }} HandlerOptions
 */

/**
 * Handles `POST /compatible-mode/v1/chat/completions`.
 * @param {import("node:http").IncomingMessage} req
 * @param {import("node:http").ServerResponse} res
 * @param {Buffer} raw the complete request body
 * @param {HandlerOptions} options
 */
export async function handleChatCompletions(req, res, raw, options) {
  const bodyHash = sha256Hex(raw);
  const attempt = options.requestLog.nextAttempt(bodyHash);
  /** @type {any} */
  let body = null;
  try {
    body = JSON.parse(raw.toString("utf8"));
  } catch {
    body = null;
  }
  const directive = parseDirective(body);
  const requestId = deterministicUuid(bodyHash, "request");
  const model = typeof body?.model === "string" ? body.model : null;
  const entry = options.requestLog.add({
    tag:
      typeof directive.tag === "string"
        ? directive.tag
        : directive.tag === undefined
          ? null
          : String(directive.tag),
    model,
    stream: body?.stream === true,
    include_usage: body?.stream_options?.include_usage === true,
    body,
    images: imageParts(body),
    directive,
    request_id: requestId,
    authorized: isAuthorized(req.headers.authorization, options.apiKey),
    attempt,
  });

  // A close before the response finished is a client abort (or one of our own deliberate disconnects).
  const abort = new AbortController();
  // The generating code notices the abort and reports the outcome itself; only a hanging request has no such code.
  res.on("close", () => {
    if (!res.writableFinished) abort.abort();
    if (entry.outcome === "hanging") finishEntry(entry, "hanging");
  });

  const outcome = await respond();
  finishEntry(entry, outcome);
  if (options.log) {
    console.log(
      `[stand-in] #${entry.seq} model=${model} stream=${entry.stream} status=${entry.status} outcome=${entry.outcome} tag=${entry.tag ?? "-"}`,
    );
  }

  /** @returns {Promise<NonNullable<import("./request-log.mjs").LogEntry["outcome"]>>} */
  async function respond() {
    /** @param {import("./errors.mjs").ErrorResponse} err */
    const sendError = (err) => {
      res.writeHead(err.status, {
        "content-type": "application/json",
        "x-request-id": requestId,
        ...err.headers,
      });
      res.end(JSON.stringify(err.body));
      entry.status = err.status;
      return /** @type {const} */ ("error");
    };
    const errorCtx = {
      model: model ?? "",
      requestId,
      ...(typeof directive.retry_after === "number" ? { retryAfterS: directive.retry_after } : {}),
    };

    if (!entry.authorized) return sendError(namedError("invalid_api_key", errorCtx));

    // `fail_times=K` limits every fault to the first K attempts of this exact body; alone it means a 500.
    const failTimes = typeof directive.fail_times === "number" ? directive.fail_times : null;
    const faultsActive = failTimes === null || attempt <= failTimes;
    if (faultsActive && body !== null) {
      if (directive.hang === true) {
        entry.outcome = "hanging";
        return new Promise(() => {}); // settled never; the close listener records the end
      }
      if (directive.hang_body === true) {
        res.writeHead(200, { "content-type": "text/event-stream;charset=UTF-8", "x-request-id": requestId });
        res.flushHeaders();
        entry.status = 200;
        entry.outcome = "hanging";
        return new Promise(() => {});
      }
      const errorName =
        typeof directive.error === "string"
          ? directive.error
          : failTimes !== null && !FAULT_KEYS.some((k) => k in directive)
            ? DEFAULT_FAILURE
            : null;
      if (errorName !== null)
        return sendError(namedError(errorName in NAMED_ERRORS ? errorName : DEFAULT_FAILURE, errorCtx));
    }

    // DashScope downloads an image given by URL before the model runs; a failed download is a 400.
    const download = await fetchUrlImages(entry.images);
    if (download) {
      return sendError(
        invalidParameter(
          `<400> InternalError.Algo.InvalidParameter: Failed to download multimodal content: ${download.url} (HTTP ${download.status})`,
          requestId,
        ),
      );
    }

    const thinking = thinksFor(body) || directive.thinking === true;
    const violation = validateRequest(body, { thinking });
    if (violation) return sendError(invalidParameter(violation, requestId));
    if (model === MISSING_MODEL) return sendError(namedError("model_not_found", errorCtx));

    const promptTokens = estimatePromptTokens(body);
    const limit = maxInputTokens(/** @type {string} */ (model), body);
    if (promptTokens > limit) {
      return sendError(
        invalidParameter(
          `<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, ${limit}]`,
          requestId,
        ),
      );
    }

    const chatUuid = requestId;
    const envelope = {
      chatId: `chatcmpl-${chatUuid}`,
      created: deterministicCreated(bodyHash),
      model: /** @type {string} */ (model),
      requestId,
    };
    const plans = planChoices({
      body,
      directive,
      bodyHash,
      thinking,
      ids: { chatUuid, created: envelope.created },
    });
    const usage = usageFor(plans, promptTokens, { thinking, audio: wantsAudio(body) });
    // Context cache (context-cache.mjs), per API key; Omni answers keep their own usage shape.
    if (!wantsAudio(body)) reportCacheUsage(usage, options.contextCache.lookup(bearerToken(req), body));
    const ttftMs = intOption(directive, "ttft", options.ttftMs);
    const itlMs = intOption(directive, "itl", options.interTokenMs);

    if (body.stream !== true) {
      return sendCompletion({
        res,
        entry,
        plans,
        envelope,
        usage,
        ttftMs,
        itlMs,
        disconnect: faultsActive && "disconnect" in directive,
        stall: faultsActive && "stall" in directive,
        signal: abort.signal,
      });
    }
    /** @type {import("./sse-stream.mjs").StreamFault | null} */
    let fault = null;
    if (faultsActive && directive.midstream !== undefined) {
      fault = {
        kind: "midstream",
        shape: directive.midstream === "native" ? "native" : "openai",
        after: intOption(directive, "after", DEFAULT_MIDSTREAM_AFTER_TOKENS),
        doneAfterError: directive.done_after_error === true,
      };
    } else if (faultsActive && directive.disconnect !== undefined) {
      fault = { kind: "disconnect", after: intOption(directive, "disconnect", 0) };
    } else if (faultsActive && directive.stall !== undefined) {
      fault = {
        kind: "stall",
        after: intOption(directive, "stall", 0),
        pingMs: intOption(directive, "stall_ping", 0),
      };
    }
    return streamChoices({
      res,
      entry,
      plans,
      envelope,
      usage,
      includeUsage: body.stream_options?.include_usage === true,
      ttftMs,
      itlMs,
      headersFirst: directive.headers_first === true,
      fault,
      signal: abort.signal,
    });
  }
}

/** The bearer token of an authorized request. @param {import("node:http").IncomingMessage} req */
function bearerToken(req) {
  return /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1] ?? "";
}

/**
 * Bearer check. With a configured key the token must match exactly (constant-time); without one any `sk-` key passes.
 * @param {string | undefined} header
 * @param {string | undefined} apiKey
 * @returns {boolean}
 */
export function isAuthorized(header, apiKey) {
  const m = /^Bearer\s+(\S+)$/i.exec(header ?? "");
  if (!m) return false;
  const token = /** @type {string} */ (m[1]);
  if (!apiKey) return token.startsWith("sk-");
  const a = Buffer.from(token);
  const b = Buffer.from(apiKey);
  return a.length === b.length && timingSafeEqual(a, b);
}
