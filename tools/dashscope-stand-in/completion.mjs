import { sleep } from "./timing.mjs";

/**
 * Builds the non-streaming `chat.completion` body (shape of fixtures/completion-text.http).
 * @param {import("./scenarios/plan.mjs").ChoicePlan[]} plans
 * @param {{ chatId: string, created: number, model: string }} envelope
 * @param {unknown} usage
 */
export function completionBody(plans, envelope, usage) {
  const choices = plans.map((plan) => {
    /** @type {Record<string, unknown>} */
    const message = { role: "assistant", content: plan.content };
    if (plan.reasoning) message.reasoning_content = plan.reasoning;
    if (plan.toolCalls) {
      message.tool_calls = plan.toolCalls.map((call, index) => ({
        id: call.id,
        type: "function",
        function: { name: call.name, arguments: call.arguments },
        index,
      }));
    }
    return {
      message,
      finish_reason: plan.finishReason,
      index: plan.index,
      logprobs: plan.logprobs ? { content: plan.logprobs } : null,
    };
  });
  return {
    choices,
    object: "chat.completion",
    usage,
    created: envelope.created,
    system_fingerprint: null,
    model: envelope.model,
    id: envelope.chatId,
  };
}

/**
 * Sends a non-streaming answer after the simulated generation time (ttft + itl per generated token).
 * @param {{ res: import("node:http").ServerResponse, entry: import("./request-log.mjs").LogEntry,
 *   plans: import("./scenarios/plan.mjs").ChoicePlan[], envelope: { chatId: string, created: number, model: string, requestId: string },
 *   usage: { completion_tokens: number }, ttftMs: number, itlMs: number, disconnect: boolean, stall: boolean,
 *   signal: AbortSignal }} opts
 * @returns {Promise<"completed" | "client_closed" | "disconnected">}
 */
export async function sendCompletion(opts) {
  const { res, entry, plans, envelope, usage, ttftMs, itlMs, disconnect, stall, signal } = opts;
  if (!(await sleep(ttftMs + itlMs * usage.completion_tokens, signal))) return "client_closed";
  if (disconnect) {
    res.socket?.destroy();
    return "disconnected";
  }
  const payload = JSON.stringify(completionBody(plans, envelope, usage));
  res.writeHead(200, { "content-type": "application/json", "x-request-id": envelope.requestId });
  entry.status = 200;
  if (stall) {
    // The first half of the body, then nothing until the client closes the connection.
    res.write(payload.slice(0, Math.ceil(payload.length / 2)));
    if (!signal.aborted)
      await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
    return "client_closed";
  }
  entry.tokens_sent = usage.completion_tokens;
  res.end(payload);
  return "completed";
}
