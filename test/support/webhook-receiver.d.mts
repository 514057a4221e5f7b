/** A running webhook receiver (see webhook-receiver.mjs for its routes). */
export interface WebhookReceiver {
  origin: string;
  /** Where the Worker POSTs webhooks (WEBHOOK_URL). */
  url: string;
  close(): Promise<void>;
}

/** Starts the receiver on `host:port` (port 0 picks a free one), verifying with `secret` (whsec_…). */
export function startWebhookReceiver(options: {
  host?: string;
  port?: number;
  secret: string;
}): Promise<WebhookReceiver>;
