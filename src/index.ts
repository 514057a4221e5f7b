import { app } from "./app";
import { PURGE_RUN_MS, purgeUnfinishedAccountDeletions } from "./generation/account-deletion";
import { FILE_SWEEP_RUN_MS, sweepFiles } from "./generation/file-sweep";

export { ConversationGeneration } from "./generation/conversation-generation";

export default {
  fetch: app.fetch,
  /**
   * The cron (wrangler.toml `[triggers]`): continues account purges that were cut off (their run
   * died, or the account was too large for one run), so a deletion completes without a retry; and
   * sweeps files (unattached uploads past their TTL, deletes cut off midway, orphaned R2 objects),
   * measuring ages from the run's scheduled time.
   */
  scheduled(controller, env, ctx) {
    ctx.waitUntil(purgeUnfinishedAccountDeletions(env, null, Date.now() + PURGE_RUN_MS));
    ctx.waitUntil(sweepFiles(env, controller.scheduledTime, Date.now() + FILE_SWEEP_RUN_MS));
  },
} satisfies ExportedHandler<Env>;
