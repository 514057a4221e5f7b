import { streamPost } from "./stream-client.mjs";

/**
 * The three ways to ask for an answer, measured side by side:
 * - `direct`: straight to the DashScope stand-in (the model's own timing);
 * - `passthrough`: through the bare pass-through Worker (the floor of the runtime);
 * - `edge`: a full edge-chat turn (auth, history read, persistence, re-encoding as edge-chat events).
 */

let tagCounter = 0;

/**
 * Stand-in directive asking for `tokens` content tokens after `ttft` ms, `itl` ms apart. The `tag`
 * finds the request in the stand-in's request log, which records when it arrived.
 */
export function prompt({ tokens, ttft, itl }, tag = `b${++tagCounter}`) {
  return `[[stand-in tokens=${tokens} ttft=${ttft} itl=${itl} tag=${tag}]] Tell me about rivers.`;
}

/**
 * Milliseconds from sending a request to the stand-in receiving the upstream call it caused (the
 * stand-in runs in this process, so both clocks are the same), or NaN if it is no longer in the log.
 * @param {{ standIn: { requests: Array<{ tag: string | null, started_at: number }> } }} h
 * @param {{ tag: string, sentAt: number }} result
 */
export function timeToUpstream(h, result) {
  const log = h.standIn.requests;
  for (let i = log.length - 1; i >= 0; i--)
    if (log[i].tag === result.tag) return log[i].started_at - result.sentAt;
  return Number.NaN;
}

/** The upstream body edge-chat sends for the first turn of a conversation, so direct calls carry the same. */
function upstreamBody(h, shape, tag) {
  return JSON.stringify({
    model: h.config.vars.DEFAULT_MODEL ?? "qwen-plus",
    messages: [
      { role: "system", content: h.config.vars.DEFAULT_SYSTEM_PROMPT ?? "You are a helpful assistant." },
      { role: "user", content: prompt(shape, tag) },
    ],
    stream: true,
    stream_options: { include_usage: true },
  });
}

/** Sends to the stand-in directly. */
export async function sendDirect(h, shape) {
  const tag = `d${++tagCounter}`;
  return {
    ...(await streamPost({
      url: h.directUrl,
      headers: h.standInAuth,
      body: upstreamBody(h, shape, tag),
      format: "openai",
    })),
    tag,
  };
}

/** Sends through the pass-through Worker. */
export async function sendPassthrough(h, shape) {
  const tag = `p${++tagCounter}`;
  const body = upstreamBody(h, shape, tag);
  return {
    ...(await streamPost({
      url: h.passthroughUrl,
      headers: { "content-type": "application/json" },
      body,
      format: "openai",
    })),
    tag,
  };
}

let requestCounter = 0;

/**
 * A streamed edge-chat turn in `conversationId` as `userId`. The request id (sent as `x-request-id`,
 * which the Worker adopts) ties the turn to its `turn.finished` log line.
 * @returns {Promise<import("./stream-client.mjs").StreamResult & { requestId: string, tag: string }>}
 */
export async function sendEdgeTurn(h, shape, { userId, conversationId, label = "turn" }) {
  const requestId = `bench-${label}-${++requestCounter}`;
  const tag = `e${++tagCounter}`;
  const result = await streamPost({
    url: `${h.edgeOrigin}/v1/conversations/${conversationId}/messages`,
    headers: await h.edgeHeaders(userId, requestId),
    body: JSON.stringify({ content: prompt(shape, tag) }),
    format: "edge",
  });
  return { ...result, requestId, tag };
}

/** Round-robin over a pool of conversations, so no turn waits on its conversation's previous answer. */
export function conversationPool(userId, ids) {
  let next = 0;
  return () => ({ userId, conversationId: ids[next++ % ids.length] });
}
