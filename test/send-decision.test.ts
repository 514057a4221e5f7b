import { describe, expect, it } from "vitest";
import { decideSend, type Send } from "../src/generation/send-decision";

const send = (
  userId: string,
  clientMessageId: string | null = null,
  requestHash: string | null = null,
): Send => ({
  userId,
  clientMessageId,
  requestHash: clientMessageId ? (requestHash ?? `hash-of-${clientMessageId}`) : null,
});

describe("what a send to a conversation is", () => {
  it("a stranger's send is foreign whatever is in flight", () => {
    expect(decideSend(send("bob"), "alice", null)).toBe("foreign");
    expect(decideSend(send("bob", "c1"), "alice", send("alice", "c1"))).toBe("foreign");
    // Even an in-flight send of another user (never the case while the owner is known first).
    expect(decideSend(send("bob"), null, send("alice"))).toBe("foreign");
  });

  it("with nothing in flight, the owner's send opens a turn", () => {
    expect(decideSend(send("alice"), "alice", null)).toBe("new");
    expect(decideSend(send("alice", "c1"), "alice", null)).toBe("new");
  });

  it("a retry of the send in flight attaches to it; the same id with another body is refused", () => {
    expect(decideSend(send("alice", "c1"), "alice", send("alice", "c1"))).toBe("attach");
    expect(decideSend(send("alice", "c1", "other"), "alice", send("alice", "c1"))).toBe("reused-id");
  });

  it("another send while an answer is in flight: an earlier stored send, or busy", () => {
    expect(decideSend(send("alice", "c2"), "alice", send("alice", "c1"))).toBe("find-stored");
    expect(decideSend(send("alice"), "alice", send("alice", "c1"))).toBe("busy");
    expect(decideSend(send("alice"), "alice", send("alice"))).toBe("busy");
  });
});
