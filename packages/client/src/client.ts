import { AnswerStream, type ReconnectOptions } from "./answer-stream";
import { errorOf } from "./errors";
import type {
  Conversation,
  ConversationPage,
  CreateConversationRequest,
  CreateTurnRequest,
  ListConversationsData,
  ListMessagesData,
  Message,
  MessagePage,
  RegenerateRequest,
  TurnResult,
  UpdateConversationRequest,
} from "./generated";

export interface EdgeChatClientOptions {
  /** The Worker's origin, e.g. `https://chat.example.com` (paths start with `/v1`). */
  baseUrl: string;
  /** The bearer token (a JWT from the app's identity provider or an API key), or a function returning a fresh one. */
  token: string | (() => string | Promise<string>);
  /** A fetch implementation; default `globalThis.fetch`. */
  fetch?: typeof fetch;
  /**
   * The D1 bookmark to start from ({@link EdgeChatClient.d1Bookmark} as the app stored it), for an
   * app that keeps it across launches. A client is for one user: bookmarks are per database.
   */
  d1Bookmark?: string;
}

/** A send's body without `stream`, which the method chosen decides. */
export type SendBody = Omit<CreateTurnRequest, "stream">;
export type RegenerateBody = Omit<RegenerateRequest, "stream">;

type Query = Record<string, string | number | boolean | undefined>;

/**
 * edge-chat's conversation API, typed by the types generated from `/openapi.json`
 * (`./generated`). Non-2xx responses reject with `EdgeChatError`.
 */
export class EdgeChatClient {
  private readonly fetch: typeof fetch;
  private bookmark: string | null;

  constructor(private readonly options: EdgeChatClientOptions) {
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
    this.bookmark = options.d1Bookmark ?? null;
  }

  /**
   * The latest `x-d1-bookmark` this client was given (a response header, or a streamed answer's
   * `d1_bookmark`), sent with every request so reads see this client's own writes from any
   * database replica. Null until the first response that carried one.
   */
  get d1Bookmark(): string | null {
    return this.bookmark;
  }

  createConversation(body: CreateConversationRequest = {}): Promise<Conversation> {
    return this.json("POST", "/v1/conversations", { body });
  }

  listConversations(query: ListConversationsData["query"] = {}): Promise<ConversationPage> {
    return this.json("GET", "/v1/conversations", { query });
  }

  getConversation(id: string): Promise<Conversation> {
    return this.json("GET", `/v1/conversations/${encodeURIComponent(id)}`);
  }

  updateConversation(id: string, body: UpdateConversationRequest): Promise<Conversation> {
    return this.json("PATCH", `/v1/conversations/${encodeURIComponent(id)}`, { body });
  }

  async deleteConversation(id: string): Promise<void> {
    await this.request("DELETE", `/v1/conversations/${encodeURIComponent(id)}`);
  }

  listMessages(conversationId: string, query: ListMessagesData["query"] = {}): Promise<MessagePage> {
    return this.json("GET", `/v1/conversations/${encodeURIComponent(conversationId)}/messages`, { query });
  }

  getMessage(id: string): Promise<Message> {
    return this.json("GET", `/v1/messages/${encodeURIComponent(id)}`);
  }

  /** Sends a message and waits for the whole answer (`stream: false`): the stored messages. */
  send(conversationId: string, body: SendBody): Promise<TurnResult> {
    return this.json("POST", `/v1/conversations/${encodeURIComponent(conversationId)}/messages`, {
      body: { ...body, stream: false },
    });
  }

  /**
   * Sends a message and streams the answer, resuming after dropped connections. A
   * `client_message_id` is generated when the body has none, so that a send whose connection
   * dropped before `turn.started` is sent again without doubling the turn.
   */
  stream(conversationId: string, body: SendBody, options: ReconnectOptions = {}): AnswerStream {
    const sent = { ...body, client_message_id: body.client_message_id ?? crypto.randomUUID(), stream: true };
    const path = `/v1/conversations/${encodeURIComponent(conversationId)}/messages`;
    return this.answerStream(
      (signal) => this.request("POST", path, { body: sent, signal, raw: true }),
      options,
    );
  }

  /** Streams another answer to the message `answerId` answers (a sibling); resumable like {@link stream}. */
  regenerate(answerId: string, body: RegenerateBody = {}, options: ReconnectOptions = {}): AnswerStream {
    const sent = { ...body, client_message_id: body.client_message_id ?? crypto.randomUUID(), stream: true };
    const path = `/v1/messages/${encodeURIComponent(answerId)}/regenerate`;
    return this.answerStream(
      (signal) => this.request("POST", path, { body: sent, signal, raw: true }),
      options,
    );
  }

  /**
   * The events of an answer after `lastEventId` (all of them without it), then its live tail: for
   * an app that comes back to an answer it left, e.g. after being suspended.
   */
  resume(messageId: string, lastEventId: string | null = null, options: ReconnectOptions = {}): AnswerStream {
    return new AnswerStream(this.streamRequests(null), options, { messageId, lastEventId });
  }

  /** Stops an answer that is still generating; returns the message as stored (a finished one unchanged). */
  stop(messageId: string): Promise<Message> {
    return this.json("POST", `/v1/messages/${encodeURIComponent(messageId)}/stop`);
  }

  private answerStream(open: (signal: AbortSignal) => Promise<Response>, options: ReconnectOptions) {
    return new AnswerStream(this.streamRequests(open), options);
  }

  private streamRequests(open: ((signal: AbortSignal) => Promise<Response>) | null) {
    return {
      open,
      resume: (messageId: string, lastEventId: string | null, signal: AbortSignal) =>
        this.request("GET", `/v1/messages/${encodeURIComponent(messageId)}/events`, {
          signal,
          raw: true,
          headers: lastEventId === null ? {} : { "Last-Event-ID": lastEventId },
        }),
      stop: (messageId: string) => this.stop(messageId),
      bookmark: (bookmark: string) => this.noteBookmark(bookmark),
    };
  }

  private async json<T>(
    method: string,
    path: string,
    init: { body?: object; query?: Query } = {},
  ): Promise<T> {
    const response = await this.request(method, path, init);
    // JSON.parse's `any` is where the wire meets the types: the generated types describe this
    // route's 2xx body (and test/openapi.test.ts validates real bodies against the same document).
    return JSON.parse(await response.text());
  }

  /**
   * One request with the bearer token; a non-2xx response rejects with its `EdgeChatError`
   * unless `raw` (the stream reads the status itself).
   */
  private async request(
    method: string,
    path: string,
    init: {
      body?: object;
      query?: Query;
      signal?: AbortSignal;
      headers?: Record<string, string>;
      raw?: boolean;
    } = {},
  ): Promise<Response> {
    const url = new URL(path, this.options.baseUrl);
    for (const [key, value] of Object.entries(init.query ?? {}))
      if (value !== undefined) url.searchParams.set(key, String(value));
    const token = typeof this.options.token === "string" ? this.options.token : await this.options.token();
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...init.headers };
    if (init.body !== undefined) headers["content-type"] = "application/json";
    if (this.bookmark !== null) headers["x-d1-bookmark"] = this.bookmark;
    const response = await this.fetch(url, {
      method,
      headers,
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
      ...(init.signal ? { signal: init.signal } : {}),
    });
    this.noteBookmark(response.headers.get("x-d1-bookmark"));
    if (!init.raw && !response.ok) throw await errorOf(response);
    return response;
  }

  /**
   * Keeps the later of the known bookmark and `bookmark`: the greater string (the API's bookmarks
   * sort by database, `NNNN~` first, then by position in it). One stored by an app from before
   * the database tag (no `~`) may sort after every tagged one, so any tagged one replaces it.
   */
  private noteBookmark(bookmark: string | null): void {
    if (bookmark === null) return;
    const held = this.bookmark;
    if (held === null || bookmark > held || (!held.includes("~") && bookmark.includes("~")))
      this.bookmark = bookmark;
  }
}
