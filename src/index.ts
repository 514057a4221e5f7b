import { app } from "./app";
import { PURGE_RUN_MS, purgeUnfinishedAccountDeletions } from "./generation/account-deletion";

export { ConversationGeneration } from "./generation/conversation-generation";

export default {
  fetch: app.fetch,
  /**
   * The cron (wrangler.toml `[triggers]`): continues account purges that were cut off (their run
   * died, or the account was too large for one run), so a deletion completes without a retry.
   */
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(purgeUnfinishedAccountDeletions(env, null, Date.now() + PURGE_RUN_MS));
  },
} satisfies ExportedHandler<Env>;
