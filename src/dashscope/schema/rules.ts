import type { z } from "zod";
import { thinks } from "../thinking";
import type { ChatMessage } from "./messages";
import type { GenerationParameters } from "./parameters";

/** The fields the cross-field rules look at: a complete request as assembled for DashScope. */
export type RuleInput = GenerationParameters & {
  /** Absent where the model is not known yet (a conversation's defaults). */
  model?: string | undefined;
  messages: readonly ChatMessage[];
  stream?: boolean | undefined;
  stream_options?: { include_usage?: boolean | undefined } | undefined;
  n?: number | undefined;
};

/** One broken rule: `message` is a phrase that follows the quoted field path. */
export interface RuleIssue {
  path: (string | number)[];
  message: string;
}

const JSON_WORD = /json/i;

/**
 * Rules between fields that DashScope enforces (or that make a request meaningless), in a
 * fixed order so the first issue is stable. Pure: returns the issues instead of throwing.
 */
export function findRuleIssues(req: RuleInput): RuleIssue[] {
  return findIssues(req, req.messages);
}

/**
 * The rules of {@link findRuleIssues} that involve parameters only, for parameters that will be
 * used with messages not known yet (a conversation's defaults, checked as a turn with no
 * overrides of its own would use them).
 */
export function findParameterRuleIssues(req: Omit<RuleInput, "messages">): RuleIssue[] {
  return findIssues(req, null);
}

function findIssues(req: Omit<RuleInput, "messages">, messages: readonly ChatMessage[] | null): RuleIssue[] {
  const issues: RuleIssue[] = [];
  const add = (path: (string | number)[], message: string) => issues.push({ path, message });
  // A model that thinks by default, or always, thinks without `enable_thinking: true` (PROTOCOL.md
  // §2.6), and DashScope holds it to the same rules.
  const thinking =
    req.model !== undefined ? thinks(req.model, req.enable_thinking) : req.enable_thinking === true;
  const whenThinking =
    req.enable_thinking === true
      ? 'when "enable_thinking" is true'
      : `when the model thinks ("${req.model}")`;
  const audioOut = (req.modalities as readonly string[] | undefined)?.includes("audio") === true;

  if (messages) checkMessages(messages, add);

  if (req.n !== undefined && req.n > 1) {
    if (req.tools) add(["n"], 'must be 1 when "tools" are given');
    else if (thinking) add(["n"], `must be 1 ${whenThinking}`);
  }
  if (req.stream_options && req.stream !== true)
    add(["stream_options"], 'is only allowed with "stream": true');
  if (req.top_logprobs !== undefined && req.logprobs !== true)
    add(["top_logprobs"], 'requires "logprobs": true');

  const format = req.response_format?.type;
  if (format === "json_object" && messages && !mentionsJson(messages)) {
    add(["response_format"], 'of type "json_object" requires the word "json" somewhere in the messages');
  }
  if ((format === "json_object" || format === "json_schema") && thinking) {
    add(["response_format"], `of type "${format}" is not supported ${whenThinking}`);
  }

  if (req.audio && !audioOut) add(["audio"], 'requires "modalities": ["text", "audio"]');
  if (audioOut && thinking) add(["modalities"], `must be ["text"] ${whenThinking}`);

  if (req.thinking_budget !== undefined && req.enable_thinking === false) {
    add(["thinking_budget"], 'is not allowed with "enable_thinking": false');
  }

  const choice = req.tool_choice;
  if (choice !== undefined && choice !== "auto" && choice !== "none") {
    if (!req.tools) add(["tool_choice"], 'requires "tools"');
    else if (typeof choice === "object" && !req.tools.some((t) => t.function.name === choice.function.name)) {
      add(["tool_choice", "function", "name"], 'must name one of the "tools"');
    }
    if (thinking) add(["tool_choice"], `must be "auto" or "none" ${whenThinking}`);
  }

  if (req.search_options && req.enable_search !== true)
    add(["search_options"], 'requires "enable_search": true');
  return issues;
}

/**
 * Runs {@link findRuleIssues} inside a zod refinement. The conversation turn can call this
 * (or parse the assembled request with `chatCompletionRequestSchema`) after merging stored
 * history, default parameters and the new message.
 */
export function checkRequestRules(req: RuleInput, ctx: Pick<z.core.$RefinementCtx, "addIssue">): void {
  for (const issue of findRuleIssues(req)) {
    ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  }
}

/**
 * A `tool` message must answer a call of the nearest preceding assistant message (other tool
 * messages may come between): DashScope rejects it otherwise with `messages with role "tool"
 * must be a response to a preceeding message with "tool_calls"`. Partial mode continues only
 * the last message.
 */
function checkMessages(
  messages: readonly ChatMessage[],
  add: (path: (string | number)[], message: string) => void,
) {
  let openCalls: Set<string> | null = null;
  messages.forEach((message, i) => {
    if (message.role === "assistant") {
      openCalls = new Set(message.tool_calls?.map((call) => call.id));
      if (message.partial === true && i !== messages.length - 1) {
        add(["messages", i, "partial"], "is only allowed on the last message");
      }
    } else if (message.role === "tool") {
      if (!openCalls?.has(message.tool_call_id)) {
        add(
          ["messages", i, "tool_call_id"],
          'does not match a tool call of the preceding assistant message (a "tool" message must answer a preceding "tool_calls")',
        );
      }
    } else {
      openCalls = null;
    }
  });
}

function mentionsJson(messages: readonly ChatMessage[]): boolean {
  for (const message of messages) {
    const content = message.content;
    if (typeof content === "string") {
      if (JSON_WORD.test(content)) return true;
    } else if (Array.isArray(content)) {
      for (const part of content) if (part.type === "text" && JSON_WORD.test(part.text)) return true;
    }
  }
  return false;
}
