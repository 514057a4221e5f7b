import { expect, it } from "vitest";
import {
  call,
  createConversation,
  endMessage,
  eventually,
  expectError,
  newTag,
  newUser,
  parseSse,
  readSse,
  resume,
  standInRequests,
  startedData,
} from "./helpers/api";

/*
 * The answer stream starts once the turn is stored, as soon as DashScope's status is known and
 * no later than STREAM_START_DEADLINE_MS (1 s here) after the commit; pings (every 300 ms in
 * tests) flow from its first byte on, through the first-token wait and upstream retries.
 */

/** Reads a response's SSE text as it arrives, events and comments in wire order. */
class Wire {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  text = "";
  done = false;

  constructor(res: Response) {
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    this.reader = res.body!.getReader();
  }

  /** Reads until `check` holds for the text so far (or the stream ends). */
  async until(check: (text: string) => boolean): Promise<string> {
    while (!check(this.text) && !this.done) {
      const { value, done } = await this.reader.read();
      if (done) this.done = true;
      else this.text += this.decoder.decode(value, { stream: true });
    }
    return this.text;
  }

  /** The wire's items in order: `:ping` for a comment, else the event name. */
  order(): string[] {
    return this.text
      .split("\n\n")
      .filter((block) => block.trim() !== "")
      .map((block) => (block.startsWith(":") ? ":ping" : (/event: (\S+)/.exec(block)?.[1] ?? "?")));
  }

  async rest(): Promise<string> {
    return this.until(() => false);
  }

  /** Hangs up, as a phone that goes away does. */
  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

const send = (userId: string, conversationId: string, body: Record<string, unknown>) =>
  call(userId, "POST", `/conversations/${conversationId}/messages`, body);

const pingsAfterStart = (text: string) => /event: turn\.started[\s\S]*\n: ping/.test(text);

it("headers, turn.started and pings come while DashScope has sent only its headers", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const wire = new Wire(await send(alice, conv.id, { content: `hi [[stand-in hang_body tag=${tag}]]` }));
  await wire.until(pingsAfterStart);
  const [request] = await standInRequests(tag);
  // DashScope answered 200 and has sent no byte of its body yet.
  expect(request).toMatchObject({ status: 200, outcome: "hanging", tokens_sent: 0 });
  expect(wire.order().slice(0, 2)).toEqual(["turn.started", ":ping"]);

  const messageId = startedData(parseSse(wire.text).events[0]).assistant_message.id;
  expect((await call(alice, "POST", `/messages/${messageId}/stop`)).status).toBe(200);
  const { events } = parseSse(await wire.rest());
  expect(endMessage(events.at(-1)).status).toBe("cancelled");
  expect(events.filter((e) => e.event === "message.delta")).toEqual([]);
});

it("the stream starts by the deadline even while DashScope holds its headers", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const wire = new Wire(await send(alice, conv.id, { content: `hi [[stand-in hang tag=${tag}]]` }));
  await wire.until(pingsAfterStart);
  // DashScope has not even sent its status line.
  expect(await standInRequests(tag)).toMatchObject([{ status: null, outcome: "hanging" }]);

  const messageId = startedData(parseSse(wire.text).events[0]).assistant_message.id;
  await call(alice, "POST", `/messages/${messageId}/stop`);
  const { events } = parseSse(await wire.rest());
  expect(endMessage(events.at(-1))).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
});

it("pings flow through upstream retries and a long first-token wait, then the answer", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const wire = new Wire(
    await send(alice, conv.id, {
      content: `hi [[stand-in error=service_unavailable fail_times=2 ttft=2500 tokens=3 tag=${tag}]]`,
    }),
  );
  await wire.rest();
  const order = wire.order();
  expect(order[0]).toBe("turn.started");
  const firstDelta = order.indexOf("message.delta");
  // The stream starts at the 1 s deadline; then a ping every 300 ms until the first token.
  expect(order.slice(1, firstDelta).filter((x) => x === ":ping").length).toBeGreaterThanOrEqual(3);
  expect(order.filter((x) => x !== ":ping").at(-1)).toBe("message.completed");
  expect((await standInRequests(tag)).map((r) => r.attempt)).toEqual([1, 2, 3]);
});

it("cancel_on_disconnect stops an answer whose last listener leaves during the first-token wait", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const tag = newTag();
  const wire = new Wire(
    await send(alice, conv.id, {
      content: `hi [[stand-in headers_first ttft=4000 tokens=3 tag=${tag}]]`,
      cancel_on_disconnect: true,
    }),
  );
  await wire.until((t) => t.includes("event: turn.started"));
  const messageId = startedData(parseSse(wire.text).events[0]).assistant_message.id;
  await wire.cancel();
  const stopped = await eventually(async () => {
    const res = await call(alice, "GET", `/messages/${messageId}`);
    const message = (await res.json()) as { status: string; error: { code: string } | null };
    return message.status === "streaming" ? null : message;
  });
  expect(stopped).toMatchObject({ status: "cancelled", error: { code: "cancelled" } });
  await eventually(async () => ((await standInRequests(tag))[0]?.outcome === "client_closed" ? true : null));
});

it("resuming during the first-byte wait gives turn.started and the live tail", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const phone = new Wire(await send(alice, conv.id, { content: `hi [[stand-in hang_body]]` }));
  await phone.until((t) => t.includes("event: turn.started"));
  const started = parseSse(phone.text).events[0]!;
  const messageId = startedData(started).assistant_message.id;

  const tablet = new Wire(await resume(alice, messageId));
  await tablet.until(pingsAfterStart);
  expect(parseSse(tablet.text).events).toEqual([started]);

  await call(alice, "POST", `/messages/${messageId}/stop`);
  for (const wire of [phone, tablet]) {
    const { events } = parseSse(await wire.rest());
    expect(endMessage(events.at(-1))).toMatchObject({ id: messageId, status: "cancelled" });
  }
});

it("a failure after the stream started is message.failed with the mapped code; its retry gets the same stream", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const body = {
    content: "hi [[stand-in error=limit_requests retry_after=1]]",
    client_message_id: `late-failure-${newTag()}`,
  };
  // Three attempts a second apart: the stream starts at the deadline, before the last fails.
  const first = await readSse(await send(alice, conv.id, body));
  expect(first.events[0]!.event).toBe("turn.started");
  expect(first.comments.length).toBeGreaterThan(0);
  const failed = endMessage(first.events.at(-1));
  expect(failed).toMatchObject({ status: "failed", error: { code: "rate_limited" } });

  const retry = await readSse(await send(alice, conv.id, body));
  expect(retry.events).toEqual(first.events);
});

it("an upstream error known before the response starts keeps its HTTP status, for the retry too", async () => {
  const alice = newUser("alice");
  const conv = await createConversation(alice);
  const body = { content: "hi [[stand-in error=access_denied]]", client_message_id: `early-${newTag()}` };
  const first = await send(alice, conv.id, body);
  const status = first.status;
  expect(status).toBeGreaterThanOrEqual(400);
  const error = ((await first.json()) as { error: { code: string } }).error.code;
  await expectError(await send(alice, conv.id, body), status, error);
  // The stored answer says the same.
  await eventually(async () => {
    const res = await call(alice, "GET", `/conversations/${conv.id}/messages`);
    const { data } = (await res.json()) as {
      data: { role: string; status: string; error: { code: string } | null }[];
    };
    const answer = data.find((m) => m.role === "assistant");
    return answer?.status === "failed" && answer.error?.code === error ? true : null;
  });
});
