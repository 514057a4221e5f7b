import * as z from "zod";
import { filePartSchema, turnContentSchema } from "../chat/file-parts";
import {
  chatCompletionRequestSchema,
  generationParametersSchema,
  messageContentSchema,
  modalitiesSchema,
} from "../dashscope/schema";
import { accountDeletionSchema } from "../resources/account";
import { apiKeyListSchema, apiKeySchema, createdApiKeySchema } from "../resources/api-key";
import { errorBodySchema } from "../resources/errors";
import { fileSchema } from "../resources/file";
import { messageUsageSchema } from "../resources/message";
import { modelListSchema, modelSchema } from "../resources/model";
import { reshardStepSchema } from "../resources/reshard";
import { searchHitSchema, searchPageSchema } from "../resources/search";
import { usageReportSchema } from "../resources/usage";
import { userLimitsPageSchema, userLimitsSchema } from "../resources/user-limits";
import { webhookEventSchema } from "../resources/webhook";
import {
  budgetBody,
  createApiKeyBody,
  createConversationBody,
  rateLimitBody,
  regenerateBody,
  reshardBody,
  turnBody,
  updateConversationBody,
} from "./bodies";
import {
  accountExportDocSchema,
  answerEventSchema,
  changeDocSchema,
  chatCompletionChunkSchema,
  chatCompletionSchema,
  conversationDocSchema,
  conversationExportDocSchema,
  conversationPageDocSchema,
  healthSchema,
  messageCompletedEventSchema,
  messageDeltaEventSchema,
  messageFailedEventSchema,
  messagePageDocSchema,
  messageSchema,
  openAiErrorBodySchema,
  siblingsDocSchema,
  syncPageDocSchema,
  turnResultDocSchema,
  turnStartedEventSchema,
} from "./schemas";

/** A JSON Schema (2020-12) object as it appears in the document. */
export type JsonSchema = Record<string, unknown>;

/**
 * The named schemas of `components.schemas`, in document order: the names are what code generators
 * turn into type names, so they are stable API. `$ref`s are typed by these keys ({@link ref}).
 */
const COMPONENTS = {
  Error: errorBodySchema,
  OpenAIError: openAiErrorBodySchema,
  Health: healthSchema,
  GenerationParameters: generationParametersSchema,
  FileContentPart: filePartSchema.describe(
    "An uploaded image (`POST /v1/files`) in a message: the OpenAI SDKs' file part. The message stores this reference; " +
      "DashScope gets the image as an `image_url` (a base64 data URL, or a short-lived signed URL). `file_id` must be a " +
      "live file of the caller, else 400 naming the part.",
  ),
  MessageContent: turnContentSchema.describe(
    "A string, or content parts: DashScope's (`text`, `image_url`, `input_audio`, `video`, `video_url`) and `file` parts " +
      "naming uploaded images (at most `MAX_FILES_PER_MESSAGE` images per message). A base64 `image_url` in a turn is " +
      "stored as a file and read back as a `file` part.",
  ),
  CreateConversationRequest: createConversationBody,
  RegenerateRequest: regenerateBody,
  UpdateConversationRequest: updateConversationBody,
  Conversation: conversationDocSchema,
  ConversationPage: conversationPageDocSchema,
  MessageUsage: messageUsageSchema,
  Message: messageSchema,
  MessagePage: messagePageDocSchema,
  MessageSiblings: siblingsDocSchema,
  CreateTurnRequest: turnBody,
  TurnResult: turnResultDocSchema,
  TurnStartedEvent: turnStartedEventSchema,
  MessageDeltaEvent: messageDeltaEventSchema,
  MessageCompletedEvent: messageCompletedEventSchema,
  MessageFailedEvent: messageFailedEventSchema,
  AnswerEvent: answerEventSchema,
  SearchHit: searchHitSchema,
  SearchPage: searchPageSchema,
  UsageReport: usageReportSchema,
  ConversationExport: conversationExportDocSchema,
  AccountExport: accountExportDocSchema,
  Change: changeDocSchema,
  SyncPage: syncPageDocSchema,
  ChatCompletionRequest: chatCompletionRequestSchema,
  ChatCompletion: chatCompletionSchema,
  ChatCompletionChunk: chatCompletionChunkSchema,
  Model: modelSchema,
  ModelList: modelListSchema,
  CreateApiKeyRequest: createApiKeyBody,
  ApiKey: apiKeySchema,
  CreatedApiKey: createdApiKeySchema,
  ApiKeyList: apiKeyListSchema,
  AccountDeletion: accountDeletionSchema,
  File: fileSchema,
  UserLimits: userLimitsSchema,
  UserLimitsPage: userLimitsPageSchema,
  SetBudgetRequest: budgetBody,
  SetRateLimitRequest: rateLimitBody,
  ReshardRequest: reshardBody,
  ReshardStep: reshardStepSchema,
  WebhookEvent: webhookEventSchema,
} as const satisfies Record<string, z.ZodType>;

/** A time as the API writes it: `YYYY-MM-DDTHH:mm:ssZ`, no fractional seconds, no offset. */
const ISO_SECONDS_PATTERN = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$";

/** The components of the answer stream's events, the variants of `AnswerEvent`. */
const ANSWER_EVENT_COMPONENTS = [
  "TurnStartedEvent",
  "MessageDeltaEvent",
  "MessageCompletedEvent",
  "MessageFailedEvent",
] as const satisfies readonly (keyof typeof COMPONENTS)[];

/** The name of a component, checked: a typo in a `$ref` fails at build time, not in a client generator. */
export type ComponentName = keyof typeof COMPONENTS;

/** `{ $ref: "#/components/schemas/<name>" }`. */
export const ref = (name: ComponentName): JsonSchema => ({ $ref: `#/components/schemas/${name}` });

/**
 * `components.schemas`, generated from the zod schemas with zod v4's own JSON Schema output
 * (draft 2020-12, the dialect of OpenAPI 3.1), so the document cannot drift from what the routes
 * validate. A registry converts all components in one pass: a component used inside another
 * becomes a `$ref` instead of a copy. Request schemas are described as input (what a client may
 * send); refinements that JSON Schema cannot express (cross-field rules) are left out, as they
 * can only be stricter.
 */
export function buildComponentSchemas(): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(COMPONENTS)) registry.add(schema, { id });
  const { schemas } = z.toJSONSchema(registry, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "any",
    uri: (id) => `#/components/schemas/${id}`,
    override: (ctx) => {
      // zod adds a regex next to `format`; the format alone is the conventional, readable form.
      if (ctx.jsonSchema.format === "date") delete ctx.jsonSchema.pattern;
      // Every time is whole seconds in UTC (resources/common.ts `isoTime`): `format: date-time`
      // (RFC 3339) allows fractions and offsets, so a short pattern says what is sent.
      if (ctx.jsonSchema.format === "date-time") {
        ctx.jsonSchema.pattern = ISO_SECONDS_PATTERN;
        ctx.jsonSchema.examples = ["2026-11-30T09:15:04Z"];
      }
      // A user message of /v1/chat/completions (DashScope's schema, which knows no file part) takes
      // file parts too: its content is the API's MessageContent.
      if (ctx.zodSchema === messageContentSchema) {
        for (const key of Object.keys(ctx.jsonSchema)) delete ctx.jsonSchema[key];
        ctx.jsonSchema.$ref = "#/components/schemas/MessageContent";
      }
      // `modalities` is a z.custom check (exactly `["text"]` or `["text", "audio"]`), which has no
      // JSON Schema of its own. An array of the enum (not a tuple schema: generators turn
      // `prefixItems` into broken tuple types) that must contain "text"; the order rule is in words.
      if (ctx.zodSchema === modalitiesSchema) {
        Object.assign(ctx.jsonSchema, {
          type: "array",
          items: { type: "string", enum: ["text", "audio"] },
          minItems: 1,
          maxItems: 2,
          uniqueItems: true,
          contains: { const: "text" },
          description: 'Output modalities: exactly `["text"]` or `["text", "audio"]`, in that order.',
        });
      }
      // The event union: the discriminator (OpenAPI 3.1) lets generators switch on `type`.
      if (ctx.zodSchema === answerEventSchema) {
        ctx.jsonSchema.discriminator = {
          propertyName: "type",
          mapping: Object.fromEntries(
            ANSWER_EVENT_COMPONENTS.map((name) => {
              const type = COMPONENTS[name].shape.type.value;
              return [type, `#/components/schemas/${name}`];
            }),
          ),
        };
      }
    },
  });
  const out: Record<string, JsonSchema> = {};
  for (const id of Object.keys(COMPONENTS)) {
    // Components live inside the document, whose dialect is declared once (`jsonSchemaDialect`).
    // `$id` is dropped too: a fragment-only `$id` is not allowed in 2020-12, and `$ref`s use the component path.
    const { $schema: _dialect, $id: _id, ...schema } = schemas[id] as JsonSchema;
    out[id] = schema;
  }
  return out;
}
