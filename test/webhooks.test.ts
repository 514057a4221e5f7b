import {
  createExecutionContext,
  createScheduledController,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import Ajv2020 from "ajv/dist/2020.js";
import addFormatsModule, { type FormatsPlugin } from "ajv-formats";
import { afterEach, describe, expect, inject, it, vi } from "vitest";
import { EVENT_FLUSH_INTERVAL_MS } from "../src/generation/answer-log";
import worker from "../src/index";
import type { WebhookEvent } from "../src/resources/webhook";
import { retryDelaySeconds } from "../src/webhooks/delivery";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  expectError,
  listMessages,
  newUser,
  openTurn,
  startedData,
  streamTurn,
} from "./helpers/api";
import { rowsOnAllShards } from "./helpers/shards";

/*
 * Webhooks when an answer ends (API.md §2.5), end to end: the Worker's real local queues
 * (miniflare, consumers as in wrangler.toml with shorter backoff: vitest.config.ts, "webhooks")
 * POST to a real HTTP receiver (test/support/webhook-receiver.mjs) that verifies every signature
 * with the `standardwebhooks` library, as an app's server would.
 */

afterEach(() => vi.restoreAllMocks());

/** One POST the receiver got. */
interface Attempt {
  webhook_id: string;
  status: number;
  verified: boolean;
  headers: Record<string, string>;
  /** The body as received. */
  body: string;
  event: WebhookEvent;
}

interface OutboxRow {
  id: string;
  message_id: string;
  type: string;
  delivered: number;
  sent_at: number | null;
  dead_at: number | null;
  last_error: string | null;
}

const receiver = () => inject("webhookReceiverOrigin");

async function attempts(conversationId: string): Promise<Attempt[]> {
  const res = await fetch(`${receiver()}/__hooks/attempts?conversation_id=${conversationId}`);
  return (await res.json()) as Attempt[];
}

/** Makes the receiver answer 500 to the next `times` attempts for the conversation (-1: all). */
async function failNext(conversationId: string, times: number): Promise<void> {
  const res = await fetch(`${receiver()}/__hooks/fail?conversation_id=${conversationId}&times=${times}`, {
    method: "POST",
  });
  expect(res.status).toBe(200);
}

/** The attempts for the conversation once one of them was acknowledged (2xx). */
function acknowledged(conversationId: string, timeoutMs = 10_000): Promise<Attempt[]> {
  return eventually(async () => {
    const seen = await attempts(conversationId);
    return seen.some((a) => a.status < 300) ? seen : null;
  }, timeoutMs);
}

// ajv-formats is CommonJS: its default import is the plugin or a namespace holding it (test/openapi.test.ts).
const formatsImport: FormatsPlugin | { default: FormatsPlugin } = addFormatsModule;
const addFormats = "default" in formatsImport ? formatsImport.default : formatsImport;

/** Whether `value` is a `WebhookEvent` as the OpenAPI document (/openapi.json) describes it. */
async function documentedWebhook(value: unknown, type: string) {
  const doc = (await (await exports.default.fetch("http://localhost/openapi.json")).json()) as {
    webhooks: Record<string, { post: { requestBody: { content: Record<string, { schema: unknown }> } } }>;
  };
  expect(doc.webhooks[type]?.post.requestBody.content["application/json"]?.schema).toEqual({
    $ref: "#/components/schemas/WebhookEvent",
  });
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addSchema(doc, "openapi");
  const validate = ajv.getSchema("openapi#/components/schemas/WebhookEvent")!;
  return { ok: validate(value) as boolean, errors: validate.errors };
}

/**
 * The signature of an attempt computed here with Web Crypto from the documented scheme
 * (standardwebhooks.com): `v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`, keyed with the
 * bytes the `whsec_` secret's base64 stands for.
 */
async function documentedSignature(secret: string, a: Attempt): Promise<string> {
  const keyBytes = Uint8Array.from(atob(secret.slice("whsec_".length)), (c) => c.charCodeAt(0));
  const key = await crypto.subtle.importKey("raw", keyBytes, { name: "HMAC", hash: "SHA-256" }, false, [
    "sign",
  ]);
  const signed = `${a.headers["webhook-id"]}.${a.headers["webhook-timestamp"]}.${a.body}`;
  const mac = new Uint8Array(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(signed)));
  return `v1,${btoa(String.fromCharCode(...mac))}`;
}

async function outboxRow(messageId: string): Promise<OutboxRow | null> {
  // The row is in the answer's owner's shard; the message id names no user, so look everywhere.
  const rows = await rowsOnAllShards<OutboxRow>(
    "SELECT * FROM webhook_outbox WHERE message_id = ?",
    messageId,
  );
  return rows[0] ?? null;
}

/** One run of the Worker's cron, as scheduled for `scheduledTime`. */
async function cron(scheduledTime: number): Promise<void> {
  const ctx = createExecutionContext();
  worker.scheduled(createScheduledController({ cron: "*/10 * * * *", scheduledTime }), env, ctx);
  await waitOnExecutionContext(ctx);
}

/** A streamed turn read to its end (a client in the foreground); returns the stored answer. */
async function foregroundTurn(userId: string, conversationId: string, content: string) {
  const { events } = await streamTurn(userId, conversationId, { content });
  return endMessage(events.at(-1));
}

describe("webhooks", () => {
  it("a foreground answer is announced once, signed, with delivered=true and the stored answer's fields", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const answer = await foregroundTurn(alice, conv.id, "hi [[stand-in tokens=4]]");
    expect(answer.status).toBe("completed");

    const seen = await acknowledged(conv.id);
    expect(seen).toHaveLength(1);
    const [hook] = seen;
    expect(hook!.verified).toBe(true);
    expect(hook!.headers["content-type"]).toBe("application/json");
    expect(hook!.headers["webhook-signature"]).toBe(
      await documentedSignature(inject("webhookSecret"), hook!),
    );
    expect(Math.abs(Number(hook!.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(30);
    expect(JSON.parse(hook!.body)).toEqual(hook!.event);
    expect(hook!.event).toEqual({
      type: "message.completed",
      timestamp: answer.completed_at,
      data: {
        user_id: alice,
        conversation_id: conv.id,
        message_id: answer.id,
        status: "completed",
        finish_reason: "stop",
        usage: answer.usage,
        delivered: true,
      },
    });
    expect(answer.usage?.completion_tokens).toBe(4);
    expect(await documentedWebhook(hook!.event, "message.completed")).toEqual({ ok: true, errors: null });
    expect(
      (await documentedWebhook({ ...hook!.event, type: "message.started" }, "message.completed")).ok,
    ).toBe(false);
    // The webhook-id is the outbox row's id; the row says it was queued, and delivered.
    const row = await eventually(async () => {
      const r = await outboxRow(answer.id);
      return r?.sent_at ? r : null;
    });
    expect(row).toMatchObject({
      id: hook!.webhook_id,
      type: "message.completed",
      delivered: 1,
      dead_at: null,
    });
  });

  it("an answer that finishes after its client hung up (app in the background) is announced with delivered=false", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const stream = await openTurn(alice, conv.id, {
      content: "Tell me a story [[stand-in tokens=20 itl=40]]",
    });
    const messageId = startedData(await stream.next()).assistant_message.id;
    expect((await stream.next())?.event).toBe("message.delta");
    await stream.cancel();

    const [hook, ...more] = await acknowledged(conv.id, 15_000);
    expect(more).toEqual([]);
    expect(hook!.verified).toBe(true);
    expect(hook!.event.type).toBe("message.completed");
    expect(hook!.event.data).toMatchObject({ message_id: messageId, status: "completed", delivered: false });
    expect(hook!.event.data.usage?.completion_tokens).toBe(20);
    expect(await outboxRow(messageId)).toMatchObject({ id: hook!.webhook_id, delivered: 0 });
  });

  it("a resumed stream that is open at the end counts as delivered", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const first = await openTurn(alice, conv.id, { content: "Go on [[stand-in tokens=20 itl=40]]" });
    const messageId = startedData(await first.next()).assistant_message.id;
    await first.cancel();
    const again = await call(alice, "GET", `/messages/${messageId}/events`);
    const text = await again.text();
    expect(text).toContain("event: message.completed");
    const [hook] = await acknowledged(conv.id, 15_000);
    expect(hook!.event.data).toMatchObject({ message_id: messageId, delivered: true });
  });

  it("a receiver that fails twice gets the webhook on the third attempt, with the same webhook-id each time", async () => {
    const log = vi.spyOn(console, "log");
    const error = vi.spyOn(console, "error");
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await failNext(conv.id, 2);
    const answer = await foregroundTurn(alice, conv.id, "hi [[stand-in tokens=3]]");

    const seen = await acknowledged(conv.id, 15_000);
    expect(seen.map((a) => a.status)).toEqual([500, 500, 204]);
    expect(seen.every((a) => a.verified)).toBe(true);
    const ids = new Set(seen.map((a) => a.webhook_id));
    expect(ids.size).toBe(1);
    expect(seen.map((a) => a.event)).toEqual([seen[0]!.event, seen[0]!.event, seen[0]!.event]);
    expect(seen[0]!.event.data.message_id).toBe(answer.id);
    // Each attempt is signed when it is made; the backoff (1 s, then 2 s) puts them seconds apart.
    const times = seen.map((a) => Number(a.headers["webhook-timestamp"]));
    expect(times[2]! - times[0]!).toBeGreaterThanOrEqual(2);
    expect(await outboxRow(answer.id)).toMatchObject({ last_error: "HTTP 500", dead_at: null });

    // The failures were logged (so this looks at the consumer's lines), never with the secret.
    const lines = [...log.mock.calls, ...error.mock.calls].map((args) => args.map(String).join(" "));
    expect(lines.some((l) => l.includes('"webhook.attempt_failed"') && l.includes(seen[0]!.webhook_id))).toBe(
      true,
    );
    const secret = inject("webhookSecret");
    for (const line of lines) {
      expect(line).not.toContain(secret);
      expect(line).not.toContain(secret.slice("whsec_".length));
    }
  });

  it("loses no webhook across 10 parallel turns", async () => {
    const users = Array.from({ length: 10 }, (_, i) => newUser(`u${i}`));
    const convs = await Promise.all(users.map((u) => createConversation(u)));
    // Some receivers fail once, so retries mix with first attempts.
    await Promise.all(convs.filter((_, i) => i % 3 === 0).map((c) => failNext(c.id, 1)));
    const answers = await Promise.all(
      convs.map((c, i) => foregroundTurn(users[i]!, c.id, `n${i} [[stand-in tokens=5 itl=20]]`)),
    );
    const delivered = await Promise.all(convs.map((c) => acknowledged(c.id, 15_000)));
    const ids = new Set<string>();
    delivered.forEach((seen, i) => {
      const ok = seen.filter((a) => a.status < 300);
      expect(ok).toHaveLength(1);
      expect(ok[0]!.verified).toBe(true);
      expect(ok[0]!.event.data).toMatchObject({
        user_id: users[i],
        conversation_id: convs[i]!.id,
        message_id: answers[i]!.id,
        delivered: true,
      });
      expect(seen).toHaveLength(i % 3 === 0 ? 2 : 1);
      ids.add(ok[0]!.webhook_id);
    });
    expect(ids.size).toBe(10);
  });

  it("a regenerated answer is announced like any other", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const first = await foregroundTurn(alice, conv.id, "hi [[stand-in tokens=3]]");
    await acknowledged(conv.id);
    const res = await call(alice, "POST", `/messages/${first.id}/regenerate`, {});
    expect(res.status).toBe(200);
    const again = await eventually(async () => {
      const [m] = await listMessages(alice, conv.id);
      return m && m.id !== first.id && m.status !== "streaming" ? m : null;
    });
    await res.body?.cancel();
    const hooks = await eventually(async () => {
      const seen = await attempts(conv.id);
      return seen.length === 2 ? seen : null;
    });
    expect(hooks.map((h) => [h.event.data.message_id, h.status, h.verified])).toEqual([
      [first.id, 204, true],
      [again.id, 204, true],
    ]);
    expect(hooks[0]!.webhook_id).not.toBe(hooks[1]!.webhook_id);
  });

  it("an answer whose owner died is announced, as interrupted and not delivered, once the object is back", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const stream = await openTurn(alice, conv.id, { content: "long [[stand-in tokens=200 itl=30]]" });
    const messageId = startedData(await stream.next()).assistant_message.id;
    expect((await stream.next())?.event).toBe("message.delta");
    await new Promise((r) => setTimeout(r, 3 * EVENT_FLUSH_INTERVAL_MS));
    const id = env.CONVERSATION_GENERATION.idFromName(conv.id);
    await runInDurableObject(env.CONVERSATION_GENERATION.get(id), (_instance, state) =>
      state.abort("owner killed by the test"),
    ).catch(() => {});
    await stream.rest().catch(() => {});
    expect(await runDurableObjectAlarm(env.CONVERSATION_GENERATION.get(id))).toBe(true);

    const [hook, ...more] = await acknowledged(conv.id);
    expect(more).toEqual([]);
    expect(hook!.verified).toBe(true);
    expect(hook!.event.type).toBe("message.failed");
    expect(hook!.event.data).toMatchObject({
      message_id: messageId,
      status: "interrupted",
      delivered: false,
    });
    expect(hook!.event.data.usage).toMatchObject({ estimated: true });
  });

  it("a failed answer is announced as message.failed", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const res = await call(alice, "POST", `/conversations/${conv.id}/messages`, {
      content: "x [[stand-in error=data_inspection_failed]]",
    });
    await expectError(res, 422, "content_filtered");
    const [answer] = await listMessages(alice, conv.id);
    expect(answer!.status).toBe("failed");

    const [hook, ...more] = await acknowledged(conv.id);
    expect(more).toEqual([]);
    expect(hook!.verified).toBe(true);
    expect(hook!.event).toEqual({
      type: "message.failed",
      timestamp: answer!.completed_at,
      data: {
        user_id: alice,
        conversation_id: conv.id,
        message_id: answer!.id,
        status: "failed",
        finish_reason: null,
        usage: null,
        // The sender got an HTTP error, no stream.
        delivered: false,
      },
    });
    expect(await documentedWebhook(hook!.event, "message.failed")).toEqual({ ok: true, errors: null });
  });

  it("a webhook whose queue send failed after the answer was stored is sent by the cron", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    // The object's send step fails, as if it died between the commit and the send.
    const stub = env.CONVERSATION_GENERATION.get(env.CONVERSATION_GENERATION.idFromName(conv.id));
    await runInDurableObject(stub, (instance) => {
      const failing = {
        metrics: () => env.WEBHOOKS.metrics(),
        send: async () => {
          throw new Error("queue unavailable");
        },
        sendBatch: async () => {
          throw new Error("queue unavailable");
        },
      } satisfies Queue;
      expect(Reflect.set(instance, "env", { ...env, WEBHOOKS: failing })).toBe(true);
    });
    const answer = await foregroundTurn(alice, conv.id, "hi [[stand-in tokens=3]]");

    // Recorded with the answer, and marked delivered (its stream got the end) before the send
    // failed; never sent.
    const row = await eventually(async () => {
      const r = await outboxRow(answer.id);
      return r?.delivered ? r : null;
    });
    expect(row).toMatchObject({ type: "message.completed", sent_at: null });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await attempts(conv.id)).toEqual([]);
    expect(await outboxRow(answer.id)).toMatchObject({ sent_at: null });

    // A cron run within the minute leaves it to its object; the next one sends it.
    await cron(Date.now());
    expect(await outboxRow(answer.id)).toMatchObject({ sent_at: null });
    await cron(Date.now() + 61_000);
    expect((await outboxRow(answer.id))?.sent_at).toEqual(expect.any(Number));

    const [hook, ...more] = await acknowledged(conv.id);
    expect(more).toEqual([]);
    expect(hook!.verified).toBe(true);
    expect(hook!.webhook_id).toBe(row!.id);
    // The cron sends what the row says.
    expect(hook!.event.data).toMatchObject({ message_id: answer.id, status: "completed", delivered: true });
  });

  it("a webhook whose object died between storing the answer and the send is sent by the cron", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    const id = env.CONVERSATION_GENERATION.idFromName(conv.id);
    // The object's queue send never returns, so it is still sending when it dies.
    await runInDurableObject(env.CONVERSATION_GENERATION.get(id), (instance) => {
      const stuck = {
        metrics: () => env.WEBHOOKS.metrics(),
        send: () => new Promise<never>(() => {}),
        sendBatch: () => new Promise<never>(() => {}),
      } satisfies Queue;
      expect(Reflect.set(instance, "env", { ...env, WEBHOOKS: stuck })).toBe(true);
    });
    const stream = await openTurn(alice, conv.id, { content: "hi [[stand-in tokens=3]]" });
    const messageId = startedData(await stream.next()).assistant_message.id;
    await stream.rest();
    // The send comes right after `delivered` is set on the row: the object dies in it (or just
    // before it), either way after the answer and its outbox row were committed.
    await eventually(async () => (await outboxRow(messageId))?.delivered === 1);
    await runInDurableObject(env.CONVERSATION_GENERATION.get(id), (_instance, state) =>
      state.abort("owner killed by the test"),
    ).catch(() => {});
    const row = await outboxRow(messageId);
    expect(row).toMatchObject({ type: "message.completed", sent_at: null });
    expect(await attempts(conv.id)).toEqual([]);

    await cron(Date.now() + 61_000);
    const [hook, ...more] = await acknowledged(conv.id);
    expect(more).toEqual([]);
    expect(hook!.verified).toBe(true);
    expect(hook!.webhook_id).toBe(row!.id);
    // Its stream got the end, and the row says so.
    expect(hook!.event.data).toMatchObject({ message_id: messageId, status: "completed", delivered: true });
  });

  it("a webhook the receiver never takes is dead-lettered after its last attempt and marked dead", async () => {
    const alice = newUser("alice");
    const conv = await createConversation(alice);
    await failNext(conv.id, -1);
    const answer = await foregroundTurn(alice, conv.id, "hi [[stand-in tokens=3]]");
    // 4 attempts (max_retries 3 in this project), 1 + 2 + 4 s apart, then the dead-letter queue.
    const row = await eventually(async () => {
      const r = await outboxRow(answer.id);
      return r?.dead_at ? r : null;
    }, 25_000);
    expect(row).toMatchObject({ last_error: "HTTP 500" });
    const seen = await attempts(conv.id);
    expect(seen.map((a) => a.status)).toEqual([500, 500, 500, 500]);
    expect(new Set(seen.map((a) => a.webhook_id))).toEqual(new Set([row!.id]));
  }, 40_000);

  it("retries back off: base doubled per failed attempt, capped at an hour", () => {
    expect([1, 2, 3, 4].map((n) => retryDelaySeconds(10, n))).toEqual([10, 20, 40, 80]);
    expect(retryDelaySeconds(10, 11)).toBe(3600);
  });
});
