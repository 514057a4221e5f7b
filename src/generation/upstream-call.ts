import type { ChatCompletionRequestBody, DashScopeClient, UpstreamStream } from "../dashscope/client";

/**
 * One upstream call of a turn, started before anything is relayed, and what is known of it so
 * far: whether DashScope's 200 headers have arrived, and whether the call has failed (or was
 * aborted) before its first byte. The state is readable synchronously, so a sender deciding
 * the form of its response (a stream, or the HTTP error of a call that failed first) sees
 * exactly what the answer's owner will see.
 */
export class UpstreamCall {
  /** `Date.now()` when the call started. */
  readonly startedAt: number;
  /** Resolves at DashScope's first body byte (after any retries); rejects as the call fails. */
  readonly stream: Promise<UpstreamStream>;
  /** Resolves when a 200's headers arrive, or the call settles, whichever is first. */
  readonly headersOrSettled: Promise<void>;
  /** Resolves when the call settles (first byte or failure); never rejects. */
  readonly settled: Promise<void>;
  private headersSeen = false;
  private failure: { error: unknown } | null = null;

  constructor(client: DashScopeClient, request: ChatCompletionRequestBody, signal: AbortSignal) {
    this.startedAt = Date.now();
    let onHeaders!: () => void;
    const headers = new Promise<void>((resolve) => (onHeaders = resolve));
    this.stream = client.stream(request, {
      signal,
      onHeaders: () => {
        this.headersSeen = true;
        onHeaders();
      },
    });
    // Attached first, so these flags are set before any other reaction to the call runs.
    this.settled = this.stream.then(
      () => {},
      (error: unknown) => {
        this.failure = { error };
      },
    );
    this.headersOrSettled = Promise.race([headers, this.settled]);
  }

  /** Whether DashScope has answered 200 (its status is known). */
  get accepted(): boolean {
    return this.headersSeen;
  }

  /** The rejection of a call that failed before its first byte, or null. */
  get failed(): { error: unknown } | null {
    return this.failure;
  }
}
