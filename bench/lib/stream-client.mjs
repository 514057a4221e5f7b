import http from "node:http";
import { performance } from "node:perf_hooks";

/**
 * A small streaming HTTP client for the bench. node:http with a keep-alive agent, no parsing beyond
 * what TTFT and token counting need, so the client adds the same small cost to every path it measures.
 */

/** Give up on one request after this long: the bench must stop by itself even if something hangs. */
export const REQUEST_TIMEOUT_MS = 120_000;

/** Keep-alive connections, as a mobile app's HTTP stack would reuse them; no cap, for the concurrency runs. */
export const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 512 });

// A content delta is a JSON string field `"content":"` whose value is not empty. Both wire formats have it:
// DashScope chunks `{"delta":{"content":" word"},…}` and edge-chat `message.delta` `{"message_id":…,"content":" word"}`.
const NON_EMPTY_CONTENT = /"content":"(?!")/;

/**
 * @typedef {object} StreamResult
 * @property {number} status HTTP status
 * @property {boolean} ok 200, the stream ended properly and carried at least one content delta
 * @property {number} ttftMs request sent → first content delta received
 * @property {number} totalMs request sent → end of the response
 * @property {number} flowMs first → last content delta
 * @property {number} tokens content deltas received
 * @property {number} sentAt wall-clock time the request was sent (epoch ms, as the stand-in's request log records)
 * @property {string} [error] why `ok` is false
 */

/**
 * Sends one POST and reads the SSE answer to its end.
 * @param {{ url: string | URL, headers: Record<string, string>, body: string, format: "openai" | "edge" }} req
 *   `openai`: DashScope chunks ending with `data: [DONE]`; `edge`: edge-chat events ending with `message.completed`.
 * @returns {Promise<StreamResult>}
 */
export function streamPost({ url, headers, body, format }) {
  return new Promise((resolve) => {
    const started = performance.now();
    const sentAt = Date.now();
    let firstAt = Number.NaN;
    let lastAt = Number.NaN;
    let tokens = 0;
    let finished = false;
    let failure;
    let status = 0;
    let buffer = "";
    const finish = (error) => {
      const end = performance.now();
      const ok = !error && status === 200 && finished && tokens > 0;
      resolve({
        status,
        ok,
        ttftMs: firstAt - started,
        totalMs: end - started,
        flowMs: lastAt - firstAt,
        tokens,
        sentAt,
        ...(ok
          ? {}
          : {
              error:
                error ??
                failure ??
                (status !== 200 ? `HTTP ${status}: ${buffer.slice(0, 200)}` : "stream ended early"),
            }),
      });
    };

    const onBlock = (block) => {
      if (format === "openai") {
        if (block.startsWith("data: [DONE]")) finished = true;
        else if (NON_EMPTY_CONTENT.test(block)) countToken();
        else if (block.includes('"error"')) failure = `upstream error: ${block.slice(0, 200)}`;
        return;
      }
      // edge-chat: `id: N\nevent: NAME\ndata: {...}`
      const nameAt = block.indexOf("event: ");
      if (nameAt === -1) return;
      const name = block.slice(nameAt + 7, block.indexOf("\n", nameAt));
      if (name === "message.delta") {
        if (NON_EMPTY_CONTENT.test(block)) countToken();
      } else if (name === "message.completed") finished = true;
      else if (name === "message.failed") failure = `message.failed: ${block.slice(0, 300)}`;
    };
    const countToken = () => {
      const now = performance.now();
      if (tokens === 0) firstAt = now;
      lastAt = now;
      tokens++;
    };

    const req = http.request(
      url,
      { method: "POST", agent, headers: { ...headers, "content-length": Buffer.byteLength(body) } },
      (res) => {
        status = res.statusCode ?? 0;
        res.setEncoding("utf8");
        res.on("data", (text) => {
          buffer += text;
          if (status !== 200) return;
          for (let at = buffer.indexOf("\n\n"); at !== -1; at = buffer.indexOf("\n\n")) {
            onBlock(buffer.slice(0, at));
            buffer = buffer.slice(at + 2);
          }
        });
        res.on("end", () => finish());
        res.on("error", (err) => finish(String(err)));
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error("request timed out")));
    req.on("error", (err) => finish(String(err)));
    req.end(body);
  });
}

/**
 * A plain JSON request (setup calls: conversations).
 * @returns {Promise<{ status: number, json: any }>}
 */
export function jsonRequest(method, url, headers, value) {
  return new Promise((resolve, reject) => {
    const body = value === undefined ? "" : JSON.stringify(value);
    const req = http.request(
      url,
      {
        method,
        agent,
        headers: {
          ...headers,
          "content-type": "application/json",
          "content-length": Buffer.byteLength(body),
        },
      },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (t) => (text += t));
        res.on("end", () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : null });
          } catch {
            reject(new Error(`${method} ${url}: ${res.statusCode} ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error("request timed out")));
    req.on("error", reject);
    req.end(body);
  });
}
