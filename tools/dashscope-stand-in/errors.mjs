/**
 * Error bodies in DashScope's compatible-mode shapes (PROTOCOL.md §3.2, §3.4, §10 T4). Key order follows the
 * captured bodies: most errors are `message, type, param, code`; `invalid_parameter_error` bodies start with `code`.
 */

const DOC = "https://help.aliyun.com/zh/model-studio/error-code";

/**
 * @typedef {{ status: number, body: Record<string, unknown>, headers: Record<string, string> }} ErrorResponse
 */

/**
 * @param {string} message
 * @param {string} type
 * @param {string} code
 */
const openAiError = (message, type, code) => ({ message, type, param: null, code });

/**
 * Named pre-stream errors, selectable with the `error=<name>` directive.
 * @type {Record<string, { status: number, error: (ctx: { model: string }) => Record<string, unknown>, withChatId?: boolean, retryAfterDefault?: number }>}
 */
export const NAMED_ERRORS = {
  invalid_api_key: {
    status: 401,
    error: () =>
      openAiError(
        `Incorrect API key provided. For details, see: ${DOC}#apikey-error`,
        "invalid_request_error",
        "invalid_api_key",
      ),
  },
  limit_requests: {
    status: 429,
    retryAfterDefault: 1,
    error: () =>
      openAiError(
        `You have exceeded your current request limit. For details, see: ${DOC}#rate-limit`,
        "limit_requests",
        "limit_requests",
      ),
  },
  limit_burst_rate: {
    status: 429,
    error: () =>
      openAiError(
        `Request rate increased too quickly. To ensure system stability, please adjust your client logic to scale requests more smoothly over time. For details, see: ${DOC}#rate-limit`,
        "limit_burst_rate",
        "limit_burst_rate",
      ),
  },
  insufficient_quota: {
    status: 429,
    error: () =>
      openAiError(
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota",
        "insufficient_quota",
      ),
  },
  data_inspection_failed: {
    status: 400,
    withChatId: true,
    error: () =>
      openAiError(
        `Input data may contain inappropriate content. For details, see: ${DOC}#inappropriate-content`,
        "data_inspection_failed",
        "data_inspection_failed",
      ),
  },
  arrearage: {
    status: 400,
    error: () =>
      openAiError(
        `Access denied, please make sure your account is in good standing. For details, see: ${DOC}#overdue-payment`,
        "Arrearage",
        "Arrearage",
      ),
  },
  access_denied: {
    status: 403,
    error: () => openAiError("Access denied.", "invalid_request_error", "access_denied"),
  },
  model_not_found: {
    status: 404,
    error: ({ model }) =>
      openAiError(
        `The model \`${model}\` does not exist or you do not have access to it.`,
        "invalid_request_error",
        "model_not_found",
      ),
  },
  invalid_parameter: {
    status: 400,
    error: () =>
      invalidParameterError(
        "<400> InternalError.Algo.InvalidParameter: The parameters provided are invalid.",
      ),
  },
  internal_error: {
    status: 500,
    error: () =>
      openAiError(
        "An internal error has occured, please try again later or contact service support.",
        "internal_error",
        "internal_error",
      ),
  },
  service_unavailable: {
    status: 503,
    error: () =>
      openAiError(
        "Too many requests. Your requests are being throttled due to system capacity limits.",
        "service_unavailable",
        "service_unavailable",
      ),
  },
};

/** Error used by `fail_times=K` when no `error=` is given. */
export const DEFAULT_FAILURE = "internal_error";

/**
 * @param {string} message
 */
function invalidParameterError(message) {
  return { code: "invalid_parameter_error", message, param: null, type: "invalid_request_error" };
}

/**
 * A named error response.
 * @param {string} name key of {@link NAMED_ERRORS}
 * @param {{ model: string, requestId: string, retryAfterS?: number }} ctx
 * @returns {ErrorResponse}
 */
export function namedError(name, ctx) {
  const spec =
    NAMED_ERRORS[name] ??
    /** @type {NonNullable<typeof NAMED_ERRORS[string]>} */ (NAMED_ERRORS[DEFAULT_FAILURE]);
  /** @type {Record<string, unknown>} */
  const body = { error: spec.error(ctx) };
  if (spec.withChatId) body.id = `chatcmpl-${ctx.requestId}`;
  body.request_id = ctx.requestId;
  /** @type {Record<string, string>} */
  const headers = {};
  const retryAfter = ctx.retryAfterS ?? spec.retryAfterDefault;
  if (retryAfter !== undefined && (spec.status === 429 || spec.status === 503))
    headers["retry-after"] = String(retryAfter);
  return { status: spec.status, body, headers };
}

/**
 * A 400 `invalid_parameter_error` with one of the documented validation messages.
 * @param {string} message
 * @param {string} requestId
 * @returns {ErrorResponse}
 */
export function invalidParameter(message, requestId) {
  return { status: 400, body: { error: invalidParameterError(message), request_id: requestId }, headers: {} };
}

/**
 * Shape A mid-stream frame: an OpenAI-style error object inside a 200 SSE stream.
 * @param {string} chatId `chatcmpl-…`
 * @returns {string} the whole SSE event including the blank line
 */
export function midstreamOpenAiFrame(chatId) {
  const error = {
    code: "data_inspection_failed",
    param: null,
    message: `Output data may contain inappropriate content. For details, see: ${DOC}#inappropriate-content`,
    type: "data_inspection_failed",
  };
  return `data: ${JSON.stringify({ error, id: chatId })}\n\n`;
}

/**
 * Shape B mid-stream frame: a native DashScope error event. No space after the field colons, and the HTTP
 * status travels as an SSE comment line — exactly as captured.
 * @param {string} requestId
 * @returns {string}
 */
export function midstreamNativeFrame(requestId) {
  const data = {
    request_id: requestId,
    code: "Throttling.AllocationQuota",
    message: "Allocated quota exceeded, please increase your quota limit.",
  };
  return `id:1\nevent:error\n:HTTP_STATUS/429\ndata:${JSON.stringify(data)}\n\n`;
}
