/** Who sends, and which send it is (a retry repeats `clientMessageId` and `requestHash`). */
export interface Send {
  userId: string;
  clientMessageId: string | null;
  requestHash: string | null;
}

/**
 * What a send to a conversation is, decided from what its object knows without any I/O:
 * - `foreign`: the conversation is known to be another user's; the sender must get exactly what
 *   a send to a missing conversation gets, and never touch the turn slot.
 * - `new`: no answer is in flight; the send opens a turn.
 * - `attach`: a retry of the send whose turn is in flight; it gets that turn's outcome.
 * - `reused-id`: the in-flight send's `client_message_id` with another body (409).
 * - `find-stored`: another answer is in flight, and the send carries a `client_message_id`: it may
 *   be the retry of an earlier, stored send (look it up), else it is `busy`.
 * - `busy`: another answer is in flight (409 `turn_in_progress`).
 *
 * `owner` is the conversation's owner when known; `inFlight` the send whose turn holds the slot.
 */
export type SendDecision = "foreign" | "new" | "attach" | "reused-id" | "find-stored" | "busy";

export function decideSend(send: Send, owner: string | null, inFlight: Send | null): SendDecision {
  if (owner !== null && owner !== send.userId) return "foreign";
  if (!inFlight) return "new";
  // Unreachable while the owner is known before a slot is claimed; kept so a stranger can
  // never see a 409 that tells them the conversation exists.
  if (inFlight.userId !== send.userId) return "foreign";
  if (send.clientMessageId !== null && send.clientMessageId === inFlight.clientMessageId)
    return send.requestHash === inFlight.requestHash ? "attach" : "reused-id";
  return send.clientMessageId !== null ? "find-stored" : "busy";
}
