import { contentText } from "./directives.mjs";
import { hasOversizedDataUrl, MAX_DATA_URL_CHARS } from "./image-parts.mjs";
import { isStreamOnlyModel, isThinkingOnlyModel } from "./model-modes.mjs";

/**
 * Light request validation mirroring the real service's 400 `invalid_parameter_error` messages
 * (PROTOCOL.md §3.2; spelling such as "preceeding" is DashScope's own).
 */
export const MESSAGES = Object.freeze({
  notJson: "<400> InternalError.Algo.InvalidParameter: The request body is not valid JSON.",
  modelMissing: "'model' is a required property",
  messagesMissing: "'messages' is a required property",
  messagesEmpty: "[] is too short",
  temperature: "Temperature should be in [0.0, 2.0)",
  n: "Range of n should be [1, 4]",
  jsonWord:
    "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
  jsonWithThinking: "Json mode response is not supported when enable_thinking is true",
  audioNeedsStream: "'audio' output only support with stream=true",
  toolWithoutCalls: 'messages with role "tool" must be a response to a preceeding message with "tool_calls"',
  thinkingNeedsStream: "parameter.enable_thinking must be set to false for non-streaming calls",
  // As reported against the live service when a history tool call's arguments were "" or cut off
  // (github.com/HKUDS/nanobot issue 1487, 2026-03).
  argumentsNotJson:
    '<400> InternalError.Algo.InvalidParameter: The "function.arguments" parameter of the code model must be in JSON format.',
  thinkingOnlyNeedsStream: "parameter.enable_thinking only support stream call",
  // The captured body ends the message with a space (PROTOCOL.md §2.6, CAPTURE id=4573151401).
  // As the live service answers a data URL over its limit (PROTOCOL.md §4; reported verbatim in
  // github.com/QwenLM/qwen-code issue 1880, 2026-02, as "400 Exceeded limit on max bytes per data-uri item : 10485760").
  dataUrlTooLong: `Exceeded limit on max bytes per data-uri item : ${MAX_DATA_URL_CHARS}`,
  streamOnlyModel:
    "This model only support stream mode, please enable the stream parameter to access the model. ",
});

/**
 * Checks a parsed body; returns the first violation's message, or null when the request is acceptable.
 * @param {any} body
 * @param {{ thinking: boolean }} flags whether the model thinks for this request (its mode, the body's
 *   `enable_thinking`, or the `thinking` directive)
 * @returns {string | null}
 */
export function validateRequest(body, { thinking }) {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return MESSAGES.notJson;
  if (typeof body.model !== "string" || body.model === "") return MESSAGES.modelMissing;
  if (body.messages === undefined) return MESSAGES.messagesMissing;
  if (!Array.isArray(body.messages) || body.messages.length === 0) return MESSAGES.messagesEmpty;
  if (hasOversizedDataUrl(body)) return MESSAGES.dataUrlTooLong;
  if (body.temperature !== undefined && body.temperature !== null) {
    const t = body.temperature;
    if (typeof t !== "number" || !(t >= 0 && t < 2)) return MESSAGES.temperature;
  }
  if (body.n !== undefined && body.n !== null) {
    if (!Number.isInteger(body.n) || body.n < 1 || body.n > 4) return MESSAGES.n;
  }
  if (body.response_format?.type === "json_object") {
    const mentionsJson = body.messages.some((/** @type {any} */ m) => /json/i.test(contentText(m?.content)));
    if (!mentionsJson) return MESSAGES.jsonWord;
    if (thinking) return MESSAGES.jsonWithThinking;
  }
  if (wantsAudio(body) && body.stream !== true) return MESSAGES.audioNeedsStream;
  if (body.stream !== true) {
    if (isStreamOnlyModel(body.model)) return MESSAGES.streamOnlyModel;
    if (isThinkingOnlyModel(body.model)) return MESSAGES.thinkingOnlyNeedsStream;
    if (thinking) return MESSAGES.thinkingNeedsStream;
  }
  let sawToolCalls = false;
  for (const m of body.messages) {
    if (m?.role === "assistant" && Array.isArray(m.tool_calls) && m.tool_calls.length > 0) {
      sawToolCalls = true;
      if (!m.tool_calls.every((/** @type {any} */ call) => isJsonText(call?.function?.arguments)))
        return MESSAGES.argumentsNotJson;
    }
    if (m?.role === "tool" && !sawToolCalls) return MESSAGES.toolWithoutCalls;
  }
  return null;
}

/**
 * Whether a history tool call's `arguments` parses as JSON (`""` and a cut-off object do not).
 * @param {unknown} text
 * @returns {boolean}
 */
function isJsonText(text) {
  if (typeof text !== "string") return false;
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/**
 * Whether the request asks for Qwen-Omni audio output.
 * @param {any} body
 * @returns {boolean}
 */
export function wantsAudio(body) {
  return Array.isArray(body?.modalities) && body.modalities.includes("audio");
}
