import http from "node:http";
import { performance } from "node:perf_hooks";
import { agent, REQUEST_TIMEOUT_MS } from "./stream-client.mjs";

/**
 * What a client sees on the wire of one streamed response, in ms from sending the request: the status
 * line and headers, and each SSE block as it arrives (not parsed beyond its event name, its comment
 * and whether it carries content).
 */

/**
 * @typedef {object} Timeline
 * @property {number} status HTTP status
 * @property {number} headersMs request sent → status line and headers received
 * @property {Array<{ at: number, kind: string }>} blocks every SSE block in arrival order; `kind` is the
 *   event name (`turn.started`, `message.delta`, …), `ping` for a `: ping` comment, `content` for a
 *   chat completion chunk with non-empty `delta.content`, `chunk` for any other chunk, `[DONE]`
 * @property {number} endMs request sent → end of the response
 * @property {string} [error]
 */

const NON_EMPTY_CONTENT = /"content":"(?!")/;

/** Names an SSE block (see {@link Timeline}). */
function kindOf(block) {
  const lines = block.split("\n");
  const event = lines.find((l) => l.startsWith("event: "));
  if (event) return event.slice(7);
  const data = lines.find((l) => l.startsWith("data: "));
  if (data) {
    if (data.startsWith("data: [DONE]")) return "[DONE]";
    return NON_EMPTY_CONTENT.test(data) ? "content" : "chunk";
  }
  if (lines.every((l) => l.startsWith(":"))) return lines[0].slice(1).trim() || "comment";
  return "other";
}

/**
 * Sends one POST and records its timeline to the end of the response.
 * @param {{ url: string | URL, headers: Record<string, string>, body: string }} req
 * @returns {Promise<Timeline>}
 */
export function recordTimeline({ url, headers, body }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const since = () => performance.now() - started;
    let status = 0;
    let headersMs = Number.NaN;
    const blocks = [];
    let buffer = "";
    const finish = (error) =>
      resolve({ status, headersMs, blocks, endMs: since(), ...(error ? { error } : {}) });
    const req = http.request(
      url,
      { method: "POST", agent, headers: { ...headers, "content-length": Buffer.byteLength(body) } },
      (res) => {
        headersMs = since();
        status = res.statusCode ?? 0;
        res.setEncoding("utf8");
        res.on("data", (text) => {
          const at = since();
          buffer += text;
          for (let end = buffer.indexOf("\n\n"); end !== -1; end = buffer.indexOf("\n\n")) {
            blocks.push({ at, kind: kindOf(buffer.slice(0, end)) });
            buffer = buffer.slice(end + 2);
          }
        });
        res.on("end", () => finish(status === 200 ? undefined : `HTTP ${status}: ${buffer.slice(0, 200)}`));
        res.on("error", (err) => finish(String(err)));
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error("request timed out")));
    req.on("error", (err) => finish(String(err)));
    req.end(body);
  });
}
