import { failure, type TurnFailure } from "./turn-result";

/** Where they are kept in the object's key-value storage, one key per answer. */
const PREFIX = "failed-before-stream:";
/** Keys per `storage.delete` call: the Durable Object storage API takes at most 128. */
const MAX_KEYS_PER_DELETE = 128;

/** A kept failure and when it was kept (ms since the epoch), for retention. */
interface Kept {
  failure: TurnFailure;
  at: number;
}

/**
 * The HTTP errors that turns got before their stream started, kept so a retried send gets the
 * same status and form as its first request (a JSON error, not a stream holding only
 * `message.failed`): the stored answer alone cannot tell such a failure from one that ended a
 * stream, whose retries replay the stream. One small entry per such answer, kept as long as
 * the answer's events.
 */
export class PreStreamFailures {
  constructor(private readonly storage: DurableObjectStorage) {}

  /** Keeps `err` as what the sender of answer `messageId` got. */
  async remember(messageId: string, err: unknown): Promise<void> {
    const kept: Kept = { failure: failure(err), at: Date.now() };
    await this.storage.put(PREFIX + messageId, kept);
  }

  async get(messageId: string): Promise<TurnFailure | null> {
    return (await this.storage.get<Kept>(PREFIX + messageId))?.failure ?? null;
  }

  /** Drops the failures kept before `before` (ms since the epoch; `Infinity`: all). */
  async forget(before: number): Promise<void> {
    const kept = await this.storage.list<Kept>({ prefix: PREFIX });
    const stale = [...kept].filter(([, value]) => value.at < before).map(([key]) => key);
    for (let i = 0; i < stale.length; i += MAX_KEYS_PER_DELETE) {
      await this.storage.delete(stale.slice(i, i + MAX_KEYS_PER_DELETE));
    }
  }
}
