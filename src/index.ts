import { app } from "./app";
import { PURGE_RUN_MS, purgeUnfinishedAccountDeletions } from "./generation/account-deletion";
import { FILE_SWEEP_RUN_MS, sweepFiles } from "./generation/file-sweep";
import { RETENTION_CRON, runRetention } from "./generation/retention";
import { deliverWebhooks, recordDeadWebhooks } from "./webhooks/delivery";
import { feedUnsentWebhooks } from "./webhooks/outbox-feed";

export { ConversationGeneration } from "./generation/conversation-generation";

/** The webhook queue's dead-letter queue (wrangler.toml `[[queues.consumers]]`). */
const WEBHOOK_DEAD_LETTER_QUEUE = "edge-chat-webhooks-dead";

export default {
  fetch: app.fetch,
  /**
   * The crons (wrangler.toml `[triggers]`), told apart by `controller.cron`: the daily one runs
   * retention (`RETENTION_DAYS`); the other continues account purges that were cut off (their run
   * died, or the account was too large for one run), so a deletion completes without a retry;
   * sweeps files (unattached uploads past their TTL, deletes cut off midway, orphaned R2 objects),
   * measuring ages from the run's scheduled time; and puts on the webhook queue the outbox rows
   * their objects did not send.
   */
  scheduled(controller, env, ctx) {
    if (controller.cron === RETENTION_CRON) {
      ctx.waitUntil(runRetention(env, Date.now()));
      return;
    }
    ctx.waitUntil(purgeUnfinishedAccountDeletions(env, null, Date.now() + PURGE_RUN_MS));
    ctx.waitUntil(sweepFiles(env, controller.scheduledTime, Date.now() + FILE_SWEEP_RUN_MS));
    ctx.waitUntil(feedUnsentWebhooks(env, controller.scheduledTime));
  },
  /** The webhook queue (deliveries) and its dead-letter queue (failures recorded). */
  async queue(batch, env) {
    if (batch.queue === WEBHOOK_DEAD_LETTER_QUEUE) await recordDeadWebhooks(batch, env);
    else await deliverWebhooks(batch, env);
  },
} satisfies ExportedHandler<Env>;
