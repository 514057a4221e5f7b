import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { notFound } from "../errors/api-error";
import { currentLogContext, type LogContext } from "../log/context";
import { logError, logInfo } from "../log/log";
import { readWalkPage, type WalkPage, type WalkPosition } from "../store/account-walk";
import { listLiveFiles } from "../store/file-lifecycle";
import { isId } from "../store/ids";
import type { D1Queries } from "../store/sessions";
import { nowMs, toIso } from "../store/time";
import { textStream } from "../text/text-stream";

/**
 * Items (conversations and messages, then files) read per D1 round trip. A message is at most about the
 * request body limit (`MAX_BODY_BYTES`, 1 MiB) of text, so a page holds at most ~100 MiB in the
 * worst case and a few hundred KiB in practice; Workers have 128 MB of memory per isolate
 * (developers.cloudflare.com/workers/platform/limits/).
 */
export const EXPORT_PAGE_ITEMS = 100;

/** `attachment`, so a browser saves the document; the name carries the export's UTC day. */
const attachment = (name: string, at: number) =>
  `attachment; filename="edge-chat-${name}-${toIso(at).slice(0, 10)}.json"`;

/**
 * Export routes (`../shared/API.md` §2.3), mounted at `/v1` behind auth. Both documents are
 * written as they are read, page by page ({@link EXPORT_PAGE_ITEMS} items per D1 round trip),
 * never held whole in memory. Messages are every branch, oldest first, as `GET /v1/messages/{id}`
 * returns them. The pages are separate reads: a conversation changed during an export shows as
 * it was when its page was read. Files (`../shared/API.md` §2.4 File objects, the metadata; the
 * bytes stay at `GET /v1/files/{id}/content`) come after the messages: the conversation's are the
 * live files its messages refer to, the account's are all the caller's live files.
 */
export const exportRoutes = new Hono<AppEnv>()
  .get("/conversations/:id/export", async (c) => {
    const id = c.req.param("id");
    if (!isId(id)) throw notFound("Conversation");
    const db = c.get("userD1").db;
    const userId = c.get("userId");
    // Read before the response starts, so a missing conversation is a 404, not a cut-off 200.
    const first = await readWalkPage(db, userId, null, EXPORT_PAGE_ITEMS, id);
    if (first.items[0]?.type !== "conversation") throw notFound("Conversation");
    const at = nowMs();
    return c.body(
      textStream(logged("export.conversation", conversationDocument(db, userId, id, first))),
      200,
      {
        "content-type": "application/json; charset=utf-8",
        "content-disposition": attachment("conversation", at),
      },
    );
  })
  .get("/account/export", (c) => {
    const at = nowMs();
    const document = accountDocument(c.get("userD1").db, c.get("userId"), toIso(at));
    return c.body(textStream(logged("export.account", document)), 200, {
      "content-type": "application/json; charset=utf-8",
      "content-disposition": attachment("account", at),
    });
  });

/** How far a document got; written to the log line when it ends. */
interface Progress {
  pages: number;
  conversations: number;
  messages: number;
  files: number;
}

/** The pages of a walk from `first` on: `first` as it is, then each next one read when asked for. */
async function* pages(
  db: D1Queries,
  userId: string,
  first: WalkPage | null,
  progress: Progress,
  conversationId?: string,
): AsyncGenerator<WalkPage> {
  let page = first ?? (await readWalkPage(db, userId, null, EXPORT_PAGE_ITEMS, conversationId));
  for (;;) {
    progress.pages++;
    yield page;
    const after: WalkPosition | null = page.next;
    if (!after) return;
    page = await readWalkPage(db, userId, after, EXPORT_PAGE_ITEMS, conversationId);
  }
}

/** `{conversation, messages, files}`, one chunk per page. */
async function* conversationDocument(
  db: D1Queries,
  userId: string,
  conversationId: string,
  first: WalkPage,
): AsyncGenerator<string, Progress> {
  const progress: Progress = { pages: 0, conversations: 0, messages: 0, files: 0 };
  let out = "";
  for await (const page of pages(db, userId, first, progress, conversationId)) {
    for (const item of page.items) {
      if (item.type === "conversation") {
        out += `{"conversation":${JSON.stringify(item.data)},"messages":[`;
        progress.conversations++;
      } else {
        out += (progress.messages++ ? "," : "") + JSON.stringify(item.data);
      }
    }
    yield out;
    out = "";
  }
  yield* filesList(db, userId, progress, [`],"files":[`, "]}"], conversationId);
  return progress;
}

/** `{user_id, exported_at, conversations: [{...Conversation, messages}], files}`, one chunk per page. */
async function* accountDocument(
  db: D1Queries,
  userId: string,
  exportedAt: string,
): AsyncGenerator<string, Progress> {
  const progress: Progress = { pages: 0, conversations: 0, messages: 0, files: 0 };
  yield `{"user_id":${JSON.stringify(userId)},"exported_at":${JSON.stringify(exportedAt)},"conversations":[`;
  let open: string | null = null;
  let inOpen = 0;
  let out = "";
  for await (const page of pages(db, userId, null, progress)) {
    for (const item of page.items) {
      if (item.type === "conversation") {
        if (open !== null) out += "]},";
        // The Conversation object without its closing brace, then its messages.
        out += `${JSON.stringify(item.data).slice(0, -1)},"messages":[`;
        open = item.id;
        inOpen = 0;
        progress.conversations++;
      } else if (item.conversation_id === open) {
        // A walk gives each conversation right before its messages (account-walk.ts); a message
        // is never read without its conversation before it.
        out += (inOpen++ ? "," : "") + JSON.stringify(item.data);
        progress.messages++;
      }
    }
    yield out;
    out = "";
  }
  yield* filesList(db, userId, progress, [`${open !== null ? "]}" : ""}],"files":[`, "]}"]);
  return progress;
}

/**
 * The File objects of the user's live files (only those conversation `conversationId` refers to
 * when it is given), by id, comma-separated, between `open` and `close`: one chunk per page of
 * {@link EXPORT_PAGE_ITEMS}, each sent before the next page is read.
 */
async function* filesList(
  db: D1Queries,
  userId: string,
  progress: Progress,
  [open, close]: [string, string],
  conversationId?: string,
): AsyncGenerator<string> {
  let out = open;
  for (let after = ""; ; ) {
    const files = await listLiveFiles(db, userId, after, EXPORT_PAGE_ITEMS, conversationId);
    progress.pages++;
    out += (progress.files && files.length ? "," : "") + files.map((file) => JSON.stringify(file)).join(",");
    progress.files += files.length;
    if (files.length < EXPORT_PAGE_ITEMS) {
      yield out + close;
      return;
    }
    yield out;
    out = "";
    after = files.at(-1)!.id;
  }
}

/**
 * `document`'s chunks, and a log line when it ends: `export.finished` with its pages (D1 round
 * trips), conversations, messages and files, or `export.failed` (the client then has a cut-off body).
 * The stream's reads run outside the request's log context, so the lines carry the context of
 * the call (a default parameter is evaluated when the generator is created, in the handler).
 */
async function* logged(
  kind: string,
  document: AsyncGenerator<string, Progress>,
  context: LogContext = currentLogContext(),
): AsyncGenerator<string> {
  try {
    let next = await document.next();
    while (!next.done) {
      yield next.value;
      next = await document.next();
    }
    logInfo("export.finished", { ...context, kind, ...next.value });
  } catch (err) {
    logError("export.failed", { ...context, kind, error: err });
    throw err;
  }
}
