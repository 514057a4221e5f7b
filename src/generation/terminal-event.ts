import type { Message } from "../store/types";
import type { LoggedEvent } from "./answer-log";

/** The terminal event of a finished answer, as its log keeps it (`id`: its place in the stream). */
export function terminalEvent(id: number, message: Message): LoggedEvent {
  return {
    id,
    event: message.status === "completed" ? "message.completed" : "message.failed",
    data: JSON.stringify({ message }),
  };
}
