import { expect, it } from "vitest";
import { call, createConversation, expectError, listMessages, newUser, streamTurn } from "./helpers/api";
import { dataUrl, filePart, jpegOf, upload, VISION_MODEL } from "./helpers/images";
import { dbOf } from "./helpers/shards";

// An image counts in a call's reservation by its pixel size and the model's rule (qwen3-vl-plus: one
// token per 32×32 px, plus 2): a 1024×1024 photo is 1,026 tokens, a 64×64 one 6. With a daily budget
// of 700 tokens and max_tokens 16, the text and the small image fit, the large image does not.
const BUDGET = 700;
const parameters = { max_tokens: 16, enable_thinking: false };

/** The user's own daily budget (their row may not exist yet: /v1/chat/completions creates none). */
const setBudget = (userId: string, tokens: number) =>
  dbOf(userId)
    .prepare(
      `INSERT INTO users (id, created_at, daily_token_budget) VALUES (?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET daily_token_budget = excluded.daily_token_budget`,
    )
    .bind(userId, Date.now(), tokens)
    .run();

it("a turn whose image does not fit the budget is refused; the same turn with a small image is answered", async () => {
  const alice = newUser("alice");
  const large = await upload(alice, jpegOf(1024, 1024));
  const small = await upload(alice, jpegOf(64, 64));
  const conv = await createConversation(alice, { model: VISION_MODEL, parameters });
  await setBudget(alice, BUDGET);

  const turn = (fileId: string) =>
    call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: [{ type: "text", text: "what is it? [[stand-in tokens=2]]" }, filePart(fileId)],
    });
  await expectError(await turn(large.id), 429, "quota_exceeded");
  expect(await listMessages(alice, conv.id)).toEqual([]);

  const res = await turn(small.id);
  expect(res.status).toBe(200);
  expect((await res.text()).includes("event: message.completed")).toBe(true);
});

it("a data URL image in a turn counts by the size its header states", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice, { model: VISION_MODEL, parameters });
  await setBudget(alice, BUDGET);
  const turn = (width: number, height: number) =>
    call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: [
        { type: "text", text: "what is it? [[stand-in tokens=2]]" },
        { type: "image_url", image_url: { url: dataUrl("image/jpeg", jpegOf(width, height, 2_000)) } },
      ],
    });
  await expectError(await turn(1024, 1024), 429, "quota_exceeded");
  const { events } = await streamTurn(alice, conv.id, {
    content: [
      { type: "text", text: "what is it? [[stand-in tokens=2]]" },
      { type: "image_url", image_url: { url: dataUrl("image/jpeg", jpegOf(64, 64, 2_000)) } },
    ],
  });
  expect(events.at(-1)!.event).toBe("message.completed");
});

it("/v1/chat/completions counts file parts and inline data URLs alike", async () => {
  const complete = (userId: string, part: unknown) =>
    call(userId, "POST", "/chat/completions", {
      model: VISION_MODEL,
      ...parameters,
      messages: [{ role: "user", content: [{ type: "text", text: "what? [[stand-in tokens=2]]" }, part] }],
    });
  const inline = (width: number, height: number) => ({
    type: "image_url",
    image_url: { url: dataUrl("image/jpeg", jpegOf(width, height, 2_000)) },
  });
  // The stand-in bills every image at 1,280 prompt tokens, so each call that is answered spends more
  // than the budget: each gets a user of its own.
  const alice = newUser("alice");
  const large = await upload(alice, jpegOf(1024, 1024));
  const small = await upload(alice, jpegOf(64, 64));
  await setBudget(alice, BUDGET);
  await expectError(await complete(alice, filePart(large.id)), 429, "quota_exceeded");
  await expectError(await complete(alice, inline(1024, 1024)), 429, "quota_exceeded");
  expect((await complete(alice, filePart(small.id))).status).toBe(200);

  const bob = newUser("bob");
  await setBudget(bob, BUDGET);
  expect((await complete(bob, inline(64, 64))).status).toBe(200);
});
