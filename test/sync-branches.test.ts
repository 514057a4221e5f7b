import { expect, it } from "vitest";
import type { Change, SyncPage } from "../src/resources/sync";
import type { Conversation, Message } from "../src/store/types";
import { call, createConversation, newUser, readSse, startedData, streamTurn } from "./helpers/api";
import { parseStrictJson } from "./helpers/strict-json";

// API.md §2.3: a message appears in GET /v1/sync again when its sibling_count changes (an edit or
// a regeneration added a version next to it), and the conversation when its active_leaf_id moves.

/** Syncs `since` until has_more is false, applying each change to `copy`; returns the last token. */
async function syncInto(
  userId: string,
  since: string | null,
  copy: { conversations: Map<string, Conversation>; messages: Map<string, Message> },
  received: Change[] = [],
) {
  for (;;) {
    const q = new URLSearchParams({ limit: "2" });
    if (since !== null) q.set("since", since);
    const res = await call(userId, "GET", `/sync?${q}`);
    expect(res.status).toBe(200);
    const page = parseStrictJson(await res.text()) as SyncPage;
    for (const change of page.changes) {
      received.push(change);
      if (change.op === "delete") {
        copy.conversations.delete(change.id);
        for (const [id, m] of copy.messages) if (m.conversation_id === change.id) copy.messages.delete(id);
      } else if (change.type === "conversation") copy.conversations.set(change.id, change.data);
      else copy.messages.set(change.id, change.data);
    }
    since = page.next_since;
    if (!page.has_more) return since;
  }
}

const emptyCopy = () => ({
  conversations: new Map<string, Conversation>(),
  messages: new Map<string, Message>(),
});
const sorted = (copy: ReturnType<typeof emptyCopy>) => ({
  conversations: [...copy.conversations.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
  messages: [...copy.messages.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
});

async function turn(
  userId: string,
  conversationId: string,
  content: string,
  extra: Record<string, unknown> = {},
) {
  const { events } = await streamTurn(userId, conversationId, { content, ...extra });
  expect(events.at(-1)!.event).toBe("message.completed");
  const started = startedData(events[0]);
  return { user: started.user_message, answer: started.assistant_message };
}

it("a sync client follows edits and regenerations (sibling_count) and the active branch (active_leaf_id) to the server's state", async () => {
  const alice = newUser("sync-branches");
  const conv = await createConversation(alice);
  const first = await turn(alice, conv.id, "one [[stand-in tokens=2]]");
  const second = await turn(alice, conv.id, "two [[stand-in tokens=2]]");
  const copy = emptyCopy();
  let since = await syncInto(alice, null, copy);
  expect(copy.messages.get(second.user.id)).toMatchObject({ sibling_index: 0, sibling_count: 1 });

  // An edit of the second message: a sibling of it, and a new active branch.
  const edited = await turn(alice, conv.id, "two, edited [[stand-in tokens=2]]", {
    parent_id: first.answer.id,
  });
  const received: Change[] = [];
  since = await syncInto(alice, since, copy, received);
  expect(received.some((c) => c.id === second.user.id)).toBe(true);
  expect(copy.messages.get(second.user.id)).toMatchObject({ sibling_index: 0, sibling_count: 2 });
  expect(copy.messages.get(edited.user.id)).toMatchObject({ sibling_index: 1, sibling_count: 2 });
  expect(copy.conversations.get(conv.id)?.active_leaf_id).toBe(edited.answer.id);

  // A regeneration of the edited answer: a sibling of it, streamed like a turn.
  const regenerated = await readSse(
    await call(alice, "POST", `/messages/${edited.answer.id}/regenerate`, {}),
  );
  expect(regenerated.events.at(-1)!.event).toBe("message.completed");
  const again = startedData(regenerated.events[0]).assistant_message;
  const seen: Change[] = [];
  since = await syncInto(alice, since, copy, seen);
  expect(seen.filter((c) => c.id === edited.answer.id)).toHaveLength(1);
  expect(copy.messages.get(edited.answer.id)).toMatchObject({ sibling_index: 0, sibling_count: 2 });
  expect(copy.messages.get(again.id)).toMatchObject({
    sibling_index: 1,
    sibling_count: 2,
    status: "completed",
  });
  expect(copy.conversations.get(conv.id)?.active_leaf_id).toBe(again.id);

  // Back to the first branch.
  const patched = await call(alice, "PATCH", `/conversations/${conv.id}`, {
    active_leaf_id: second.answer.id,
  });
  expect(patched.status).toBe(200);
  await syncInto(alice, since, copy);
  expect(copy.conversations.get(conv.id)).toEqual(
    await (await call(alice, "GET", `/conversations/${conv.id}`)).json(),
  );
  // What the client holds is what a fresh snapshot holds.
  const fresh = emptyCopy();
  await syncInto(alice, null, fresh);
  expect(sorted(copy)).toEqual(sorted(fresh));
  expect(fresh.messages.size).toBe(7);
});
