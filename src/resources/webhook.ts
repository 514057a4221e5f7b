import * as z from "zod";
import { isoTime, timeOrderedId } from "./common";
import { messageUsageSchema } from "./message";

/** The webhook event types: one per answer, by how it ended. */
export const WEBHOOK_EVENT_TYPES = ["message.completed", "message.failed"] as const;

/**
 * The body of the webhook POSTed to `WEBHOOK_URL` when an answer ends (`../shared/API.md` §2.5),
 * signed per Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`).
 */
export const webhookEventSchema = z.object({
  type: z
    .enum(WEBHOOK_EVENT_TYPES)
    .describe("`message.completed` for a completed answer; `message.failed` for any other end."),
  timestamp: isoTime.describe("When the answer ended (its `completed_at`); ISO 8601, UTC."),
  data: z.object({
    user_id: z.string().describe("The owner of the conversation (the identity provider's `sub`)."),
    conversation_id: timeOrderedId,
    message_id: timeOrderedId.describe("The answer (an assistant message)."),
    status: z.enum(["completed", "cancelled", "interrupted", "failed"]),
    finish_reason: z.string().nullable(),
    usage: messageUsageSchema.nullable().describe("`null` when the answer never reached the model."),
    delivered: z
      .boolean()
      .describe(
        "True when the terminal event (`message.completed` or `message.failed`) was written to at least one answer stream that was open when the answer ended, i.e. an app was reading it. False: no stream was open (the app was in the background, closed or offline), or the answer was closed after a restart. Send a push when false.",
      ),
  }),
});

export type WebhookEvent = z.infer<typeof webhookEventSchema>;
export type WebhookEventType = WebhookEvent["type"];
/** The event's `data` as the outbox keeps it: everything but `delivered`. */
export type WebhookEventData = Omit<WebhookEvent["data"], "delivered">;
