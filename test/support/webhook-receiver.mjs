// A webhook receiver for the test run, as an app's server would be: verifies each POST with the
// `standardwebhooks` library's `Webhook.verify` and records every attempt. Node side only
// (started by test/support/webhook-receiver-setup.ts for the "webhooks" test project).
import { createServer } from "node:http";
import { Webhook } from "standardwebhooks";

/**
 * Starts the receiver.
 *
 * - `POST /hooks`: verifies the signature (401 when it does not verify); then answers 500 while the
 *   payload's conversation has failures left (see below), else 204. Every attempt is recorded.
 * - `POST /__hooks/fail?conversation_id=…&times=N`: the next N attempts for that conversation get
 *   500 (`times=-1`: every attempt).
 * - `GET /__hooks/attempts?conversation_id=…`: the attempts for that conversation, in arrival
 *   order: `{ webhook_id, status, verified, headers, body, event }` (`body` as received).
 */
export async function startWebhookReceiver({ host = "127.0.0.1", port = 0, secret }) {
  const webhook = new Webhook(secret);
  /** @type {{ conversation_id: string | null, webhook_id: string | null, status: number, verified: boolean, headers: Record<string, string>, body: string, event: unknown }[]} */
  const attempts = [];
  /** @type {Map<string, number>} conversation → failures left (-1: always). */
  const failures = new Map();

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://receiver");
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      const send = (status, json) => {
        res.writeHead(status, json === undefined ? {} : { "content-type": "application/json" });
        res.end(json === undefined ? undefined : JSON.stringify(json));
      };
      if (req.method === "POST" && url.pathname === "/hooks") {
        const headers = {
          "webhook-id": String(req.headers["webhook-id"] ?? ""),
          "webhook-timestamp": String(req.headers["webhook-timestamp"] ?? ""),
          "webhook-signature": String(req.headers["webhook-signature"] ?? ""),
          "content-type": String(req.headers["content-type"] ?? ""),
        };
        let event = null;
        let verified = false;
        try {
          event = webhook.verify(body, headers);
          verified = true;
        } catch {
          try {
            event = JSON.parse(body);
          } catch {}
        }
        const conversationId = event?.data?.conversation_id ?? null;
        let status = verified ? 204 : 401;
        const left = conversationId === null ? 0 : (failures.get(conversationId) ?? 0);
        if (verified && left !== 0) {
          status = 500;
          if (left > 0) failures.set(conversationId, left - 1);
        }
        attempts.push({
          conversation_id: conversationId,
          webhook_id: headers["webhook-id"],
          status,
          verified,
          headers,
          body,
          event,
        });
        return send(status);
      }
      if (req.method === "POST" && url.pathname === "/__hooks/fail") {
        failures.set(
          url.searchParams.get("conversation_id") ?? "",
          Number(url.searchParams.get("times") ?? "0"),
        );
        return send(200, { ok: true });
      }
      if (req.method === "GET" && url.pathname === "/__hooks/attempts") {
        const id = url.searchParams.get("conversation_id");
        return send(
          200,
          attempts.filter((a) => a.conversation_id === id),
        );
      }
      send(404, { error: "not found" });
    });
  });
  await new Promise((resolve) => server.listen(port, host, resolve));
  const address = server.address();
  const origin = `http://${host}:${address.port}`;
  return {
    origin,
    url: `${origin}/hooks`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
