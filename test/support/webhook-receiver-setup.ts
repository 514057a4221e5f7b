import { randomBytes } from "node:crypto";
import type { TestProject } from "vitest/node";
import { startWebhookReceiver } from "./webhook-receiver.mjs";

/**
 * Starts the webhook receiver for the "webhooks" project and hands the Worker its address and a
 * fresh signing secret in the Standard Webhooks form (`whsec_` + base64 of 32 random bytes).
 */
export default async function setup(project: TestProject) {
  const secret = `whsec_${randomBytes(32).toString("base64")}`;
  const receiver = await startWebhookReceiver({ host: "127.0.0.1", port: 0, secret });
  project.provide("webhookUrl", receiver.url);
  project.provide("webhookReceiverOrigin", receiver.origin);
  project.provide("webhookSecret", secret);
  return () => receiver.close();
}
