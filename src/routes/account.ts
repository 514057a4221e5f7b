import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import {
  deleteAccount,
  PURGE_RUN_MS,
  purgeAccountDeletion,
  purgeUnfinishedAccountDeletions,
} from "../generation/account-deletion";
import { requireSignInToken } from "../middleware/sign-in-token";
import type { AccountDeletion } from "../resources/account";

/**
 * `DELETE /v1/account` (`../shared/API.md` §2.3), mounted at `/v1` behind auth: the user's
 * sign-in token only (403 `forbidden` with an API key, which is a server acting for the user).
 * Everything of the caller is hidden before the 202; the purge continues after it (and, if cut
 * off, in the next retry or cron run). A repeated call is a new deletion of what is left: 202
 * with the counts it found (all 0 once the first went through), and it resumes the caller's
 * unfinished purges.
 */
export const accountRoutes = new Hono<AppEnv>().delete(
  "/account",
  requireSignInToken("Only the user's sign-in token can delete the account, never an API key."),
  async (c) => {
    const { deletion, deleted } = await deleteAccount(c.env, c.get("userId"));
    const deadline = Date.now() + PURGE_RUN_MS;
    c.executionCtx.waitUntil(
      purgeAccountDeletion(c.env, deletion, deadline).then(() =>
        purgeUnfinishedAccountDeletions(c.env, deletion.user_id, deadline),
      ),
    );
    const body: AccountDeletion = { deleted };
    return c.json(body, 202);
  },
);
