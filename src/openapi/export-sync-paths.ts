/** Operations of the export routes and `GET /v1/sync` (`../shared/API.md` §2.3). */
import { ref } from "./components";
import { errorResponses, json, pathId } from "./operations";

/** A JSON document sent as a download (`Content-Disposition: attachment`). */
const download = (description: string, component: Parameters<typeof ref>[0]) => ({
  description,
  headers: {
    "Content-Disposition": {
      description: '`attachment; filename="edge-chat-…-YYYY-MM-DD.json"`.',
      schema: { type: "string" },
    },
  },
  content: { "application/json": { schema: ref(component) } },
});

/** `paths` entries of the exports and the delta sync. */
export function exportSyncPaths(): Record<string, Record<string, unknown>> {
  return {
    "/v1/conversations/{id}/export": {
      parameters: [pathId("conversation")],
      get: {
        operationId: "exportConversation",
        tags: ["Export and sync"],
        summary: "Export a conversation with every branch",
        description:
          "The conversation and every message of every branch, oldest first (by id), as `GET /v1/messages/{id}` returns them, " +
          "then the files its messages refer to (File objects, by id; the bytes are at `GET /v1/files/{id}/content`). " +
          "Written while it is read, page by page.",
        responses: {
          200: download("The conversation, its messages and its files.", "ConversationExport"),
          ...errorResponses([401, 404], "Error"),
        },
      },
    },
    "/v1/account/export": {
      get: {
        operationId: "exportAccount",
        tags: ["Export and sync"],
        summary: "Export everything of the caller as one JSON document",
        description:
          "Every conversation (oldest first) with every message of every branch (oldest first), then every live file of the " +
          "caller (File objects, by id, attached to a message or not), streamed: the document is " +
          "written while the account is read page by page, so it has no size limit. A body cut off before its end (the " +
          "connection failed, or a read failed on the server) is not valid JSON: retry the export. Pages are read one after " +
          "another, so a conversation changed during the export shows as it was when its page was read.",
        responses: {
          200: download("The whole account.", "AccountExport"),
          ...errorResponses([401], "Error"),
        },
      },
    },
    "/v1/sync": {
      get: {
        operationId: "sync",
        tags: ["Export and sync"],
        summary: "The caller's changes since a token (delta sync)",
        description:
          "Without `since`: a snapshot of every conversation, each followed by its messages (every branch), as upserts, " +
          "paged by `limit`; its last page's `next_since` continues the change log from when the snapshot began. With " +
          "`since`: the changes after it in commit order. A conversation appears when created and on every change; a " +
          "message when created, when it reaches its final status, and when its `sibling_count` grows (a new version next " +
          "to it), not on every delta. An upsert carries the row as it is when the sync reads it (so one may appear once " +
          "for several changes, and a row deleted since is left out: its conversation's tombstone follows). A deleted " +
          "conversation is one `delete` change; its messages have none: drop them with it. Apply the changes in order, " +
          "follow `next_since` while `has_more`, and keep the last `next_since` for the next sync. " +
          "`410 sync_expired`: the token can no longer be continued (changes after it are older than " +
          "`SYNC_RETENTION_DAYS`, default 30, or the account was deleted since): drop the local copy and take a snapshot.",
        parameters: [
          {
            name: "since",
            in: "query",
            required: false,
            description: "`next_since` of the previous page or sync, unchanged; absent for a snapshot.",
            schema: { type: "string" },
          },
          {
            name: "limit",
            in: "query",
            required: false,
            description: "Most changes per page.",
            schema: { type: "integer", minimum: 1, maximum: 500, default: 100 },
          },
        ],
        responses: {
          200: { description: "A page of changes.", content: json("SyncPage") },
          ...errorResponses([400, 401, 410], "Error"),
        },
      },
    },
  };
}
