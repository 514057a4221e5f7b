/**
 * The document's `webhooks` (OpenAPI 3.1): the POST edge-chat makes to `WEBHOOK_URL` when an answer
 * ends (`../shared/API.md` §2.5), one entry per event type, both with the `WebhookEvent` body.
 */
import { WEBHOOK_EVENT_TYPES } from "../resources/webhook";
import { ref } from "./components";

const SIGNATURE_HEADERS = [
  {
    name: "webhook-id",
    in: "header",
    required: true,
    description: "The webhook's id: the same on every retry of it (deduplicate on it).",
    schema: { type: "string" },
  },
  {
    name: "webhook-timestamp",
    in: "header",
    required: true,
    description:
      "Unix seconds of this attempt (Standard Webhooks receivers refuse one more than 5 minutes off).",
    schema: { type: "string", pattern: "^[0-9]+$" },
  },
  {
    name: "webhook-signature",
    in: "header",
    required: true,
    description:
      "`v1,` + base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes of " +
      "`WEBHOOK_SECRET` (`whsec_` + base64), per Standard Webhooks (standardwebhooks.com).",
    schema: { type: "string", pattern: "^v1,[A-Za-z0-9+/]+=*$" },
  },
];

/** `webhooks` of the document. */
export function webhookOperations(): Record<string, Record<string, unknown>> {
  return Object.fromEntries(
    WEBHOOK_EVENT_TYPES.map((type) => [
      type,
      {
        post: {
          operationId: type === "message.completed" ? "answerCompletedWebhook" : "answerFailedWebhook",
          tags: ["Webhooks"],
          summary:
            type === "message.completed"
              ? "An answer completed (sent when `WEBHOOK_URL` is set)"
              : "An answer failed, was cancelled or interrupted (sent when `WEBHOOK_URL` is set)",
          description:
            "Sent once per answer that ends (conversation turns and regenerations; not /v1/chat/completions), at least " +
            "once: answer 2xx, or it is retried with backoff (10 s doubling up to an hour, 11 attempts), then " +
            "dead-lettered. `data.delivered` tells whether an app was reading the answer's stream when it ended: send " +
            "a push when it is false.",
          security: [],
          parameters: SIGNATURE_HEADERS,
          requestBody: { required: true, content: { "application/json": { schema: ref("WebhookEvent") } } },
          responses: {
            "2XX": { description: "Received; any other status (or none within 15 s) is retried." },
          },
        },
      },
    ]),
  );
}
