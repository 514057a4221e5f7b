import { DurableObject } from "cloudflare:workers";
import type { Env } from "../env";

/** Owner of a conversation's in-flight answer. */
export class ConversationGeneration extends DurableObject<Env> {}
