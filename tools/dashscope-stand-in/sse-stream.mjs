import { midstreamNativeFrame, midstreamOpenAiFrame } from "./errors.mjs";
import { sleep, writeWithBackpressure } from "./timing.mjs";

const CHUNK_OBJECT = "chat.completion.chunk";
const TOKEN_KINDS = new Set(["reasoning", "content", "tool", "audio"]);

/**
 * @typedef {{ kind: "midstream", shape: "openai" | "native", after: number, doneAfterError: boolean }
 *   | { kind: "disconnect", after: number }
 *   | { kind: "stall", after: number, pingMs: number }} StreamFault
 */

/** What a stalled stream sends every `stall_ping` ms: an SSE comment, which carries no event. */
const STALL_PING = ": keep-alive\n\n";

/**
 * Serialises one choice of a step. Key order copies the documentation's examples, including their
 * inconsistency between the opening, middle and finish chunks.
 * @param {import("./scenarios/plan.mjs").ChoicePlan} plan
 * @param {import("./scenarios/plan.mjs").Step} step
 */
function choiceJson(plan, step) {
  if (step.kind === "role")
    return { delta: step.delta, index: plan.index, logprobs: null, finish_reason: null };
  if (step.kind === "finish")
    return { finish_reason: step.finishReason, delta: step.delta, index: plan.index, logprobs: null };
  if (step.bare) return { delta: step.delta, index: plan.index };
  return { delta: step.delta, finish_reason: null, index: plan.index, logprobs: step.logprobs ?? null };
}

/**
 * A `data:` event with the chunk envelope in wire order: choices, object, usage, created, system_fingerprint, model, id.
 * @param {{ chatId: string, created: number, model: string }} envelope
 * @param {unknown[]} choices
 * @param {unknown} usage
 */
function chunkEvent(envelope, choices, usage) {
  const chunk = {
    choices,
    object: CHUNK_OBJECT,
    usage,
    created: envelope.created,
    system_fingerprint: null,
    model: envelope.model,
    id: envelope.chatId,
  };
  return `data: ${JSON.stringify(chunk)}\n\n`;
}

/**
 * Streams the planned choices as SSE, interleaving choices step by step (index 0, 1, 0, 1, … as in T7).
 * Headers go out together with the first chunk, after the time-to-first-token delay.
 * @param {{ res: import("node:http").ServerResponse, entry: import("./request-log.mjs").LogEntry,
 *   plans: import("./scenarios/plan.mjs").ChoicePlan[], envelope: { chatId: string, created: number, model: string, requestId: string },
 *   usage: unknown, includeUsage: boolean, ttftMs: number, itlMs: number, headersFirst?: boolean, fault: StreamFault | null, signal: AbortSignal }} opts
 * @returns {Promise<"completed" | "client_closed" | "disconnected" | "midstream_error">}
 */
export async function streamChoices(opts) {
  const { res, entry, plans, envelope, usage, includeUsage, ttftMs, itlMs, headersFirst, fault, signal } =
    opts;
  /** @type {Array<[import("./scenarios/plan.mjs").ChoicePlan, import("./scenarios/plan.mjs").Step]>} */
  const order = [];
  const longest = Math.max(...plans.map((p) => p.steps.length));
  for (let s = 0; s < longest; s++) {
    for (const plan of plans) {
      const step = plan.steps[s];
      if (step) order.push([plan, step]);
    }
  }

  const writeHeaders = () => {
    res.writeHead(200, {
      "content-type": "text/event-stream;charset=UTF-8",
      "cache-control": "no-cache",
      "x-request-id": envelope.requestId,
    });
    // Node holds written headers until the first body write; flushing sends them now.
    res.flushHeaders();
    entry.status = 200;
  };
  // `headers_first`: the 200 goes out at once and the first chunk `ttft` later (a model whose
  // gateway answers before it generates); otherwise the headers wait for the first chunk.
  if (headersFirst) writeHeaders();
  if (!(await sleep(ttftMs, signal))) return "client_closed";
  if (!headersFirst) writeHeaders();

  let contentSent = 0;
  let deltasSent = 0;
  let firstWrite = true;
  /** @param {string} text */
  const send = async (text) => {
    if (!firstWrite && !(await sleep(itlMs, signal))) return false;
    firstWrite = false;
    return writeWithBackpressure(res, text, signal);
  };

  for (const [plan, step] of order) {
    if (fault?.kind === "stall" && (deltasSent >= fault.after || step.kind === "finish")) {
      return stall(res, fault.pingMs, signal);
    }
    // Faults fire after `after` content tokens, or just before the finish chunk when the answer is shorter.
    if (fault && fault.kind !== "stall" && (contentSent >= fault.after || step.kind === "finish")) {
      if (fault.kind === "disconnect") {
        // Let what was written reach the client first, then destroy the socket: no chunked terminator, so the
        // client sees a truncated body rather than a clean end.
        await new Promise((resolve) => res.write("", () => resolve(undefined)));
        res.socket?.destroy();
        return "disconnected";
      }
      const frame =
        fault.shape === "native"
          ? midstreamNativeFrame(envelope.requestId)
          : midstreamOpenAiFrame(envelope.chatId);
      if (!(await send(frame))) return "client_closed";
      if (fault.doneAfterError && !(await send("data: [DONE]\n\n"))) return "client_closed";
      res.end();
      return "midstream_error";
    }
    if (!(await send(chunkEvent(envelope, [choiceJson(plan, step)], null)))) return "client_closed";
    if (TOKEN_KINDS.has(step.kind)) {
      entry.tokens_sent++;
      deltasSent++;
    }
    if (step.kind === "content") contentSent++;
  }

  // The real service sends a usage chunk only when stream_options.include_usage is true.
  if (includeUsage && !(await send(chunkEvent(envelope, [], usage)))) return "client_closed";
  if (!(await send("data: [DONE]\n\n"))) return "client_closed";
  res.end();
  return "completed";
}

/**
 * Goes quiet with the connection open (a generation that hung upstream): nothing more is sent, except an SSE
 * comment every `pingMs` when that is positive, until the client closes the connection.
 * @param {import("node:http").ServerResponse} res
 * @param {number} pingMs
 * @param {AbortSignal} signal
 * @returns {Promise<"client_closed">}
 */
async function stall(res, pingMs, signal) {
  if (pingMs > 0) {
    while (await sleep(pingMs, signal)) {
      if (!(await writeWithBackpressure(res, STALL_PING, signal))) break;
    }
  } else if (!signal.aborted) {
    await new Promise((resolve) => signal.addEventListener("abort", resolve, { once: true }));
  }
  return "client_closed";
}
