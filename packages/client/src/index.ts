/**
 * @edge-chat/client: edge-chat's conversation API with resumable answer streams. The types are
 * generated from `/openapi.json` by @hey-api/openapi-ts (`npm run client:types`); the rest is this
 * thin layer over `fetch`.
 */
export { AnswerStream, type ReconnectOptions } from "./answer-stream";
export { EdgeChatClient, type EdgeChatClientOptions, type RegenerateBody, type SendBody } from "./client";
export { EdgeChatError } from "./errors";
export type * from "./generated";
