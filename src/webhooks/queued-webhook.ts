import * as z from "zod";
import { webhookEventSchema } from "../resources/webhook";

/**
 * A webhook as it travels on the queue (and on to the dead-letter queue): its outbox row's id,
 * which is its `webhook-id` on every attempt, and its body.
 */
export const queuedWebhookSchema = z.object({ id: z.string().min(1), event: webhookEventSchema });

export type QueuedWebhook = z.infer<typeof queuedWebhookSchema>;
