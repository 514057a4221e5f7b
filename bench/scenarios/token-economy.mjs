import { conversationScript, FACT } from "../lib/conversation-script.mjs";
import { section, table } from "../lib/format.mjs";
import { jsonRequest } from "../lib/stream-client.mjs";

/**
 * Issue 17's token economy: one scripted 200-turn conversation (bench/lib/conversation-script.mjs)
 * on a model with a 16k-token window, replayed under each prompt strategy against the stand-in's
 * simulated context cache (tools/dashscope-stand-in/context-cache.mjs). Per strategy: prompt
 * tokens, cached tokens, billed input cost, the share of turns with a cache hit, and whether turn
 * 200's prompt still carries the fact stated in turn 1.
 *
 * A strategy is `{ name, note, run(h, script) → TurnRecord[] }` in {@link STRATEGIES}; edge-chat's
 * cache-aware layout plugs in as another Worker-driven strategy (see {@link workerStrategy}).
 */

/** The bench model: qwen-plus's prices (its family, chat/pricing.ts) with a 16k window (harness binding). */
export const TOKEN_ECONOMY_MODEL = "qwen-plus-16k";
export const TOKEN_ECONOMY_WINDOW = 16_384;
/**
 * The running summary's model on the bench's Workers: the stand-in's digest model
 * (tools/dashscope-stand-in/scenarios/digest.mjs), which the Worker prices as qwen-flash, the
 * default `SUMMARY_MODEL`. Its answer is the lines of its input that carry `keep` (turn 1's).
 */
export const SUMMARY_MODEL = "qwen-flash-digest";
const TURNS = 200;
/** `max_tokens` of every turn: room for the longest scripted answer (450 stand-in tokens) and more. */
const REPLY_TOKENS = 1_024;
/** qwen-plus list prices, USD per 1M tokens (PROTOCOL.md §7.2; the same in src/chat/pricing.ts). */
const PRICE = { input: 0.4, output: 1.2 };
/** Cache prices as shares of the input price (PROTOCOL.md §8). */
const SHARE = { implicitHit: 0.2, explicitHit: 0.1, creation: 1.25 };

/**
 * @typedef {{ turn: number, sent: boolean, promptTokens: number, cachedTokens: number, inputCostUsd: number,
 *   carriesFact: boolean, folded?: boolean }} TurnRecord
 * `folded`: the prompt does not start with the whole previous prompt (markers aside): history was dropped.
 */

/**
 * A body's messages as the model reads them: `cache_control` markers left out (they are not prompt
 * text), and a content of text parts only as its one string (a marker turns a string into a part).
 */
function promptText(body) {
  return body.messages.map((m) => {
    if (!Array.isArray(m.content)) return m;
    const parts = m.content.map(({ cache_control: _marker, ...part }) => part);
    const text = parts.every((p) => p.type === "text") ? parts.map((p) => p.text).join("") : null;
    return { ...m, content: text ?? parts };
  });
}

/** Billed input cost of one call from DashScope's usage (§7.2's formula). */
function inputCost(usage) {
  const d = usage.prompt_tokens_details ?? {};
  const cached = d.cached_tokens ?? 0;
  const created = d.cache_creation_input_tokens ?? 0;
  const explicit = d.cache_type === "ephemeral" || created > 0;
  const hit = explicit ? SHARE.explicitHit : SHARE.implicitHit;
  return (
    ((usage.prompt_tokens - cached - created) * PRICE.input +
      cached * PRICE.input * hit +
      created * PRICE.input * SHARE.creation) /
    1e6
  );
}

/**
 * The upstream body the stand-in logged for `tag` (the prompt as sent). Only the turn's own call:
 * the title call after turn 1 quotes the user message, directive and tag included.
 */
function loggedBody(h, tag) {
  const log = h.standIn.requests;
  for (let i = log.length - 1; i >= 0; i--)
    if (log[i].tag === tag && log[i].body.model === TOKEN_ECONOMY_MODEL) return log[i].body;
  throw new Error(`no upstream request tagged ${tag}`);
}

/** Turn 1's directive also marks its line for the digest model: the fact a summary must carry. */
const directive = (step, tag) =>
  `[[stand-in tokens=${step.answerTokens} tag=${tag}${step.turn === 1 ? " keep" : ""}]]`;

/** What introduces the running summary inside the system message (src/chat/summary-message.ts). */
const SUMMARY_HEADING = "Summary of the earlier part of this conversation";

/** Whether a body's running summary (in its system message, after the heading) carries the fact. */
const summaryCarriesFact = (body) => {
  const system = body.messages[0]?.role === "system" ? JSON.stringify(body.messages[0].content) : "";
  const at = system.indexOf(SUMMARY_HEADING);
  return at >= 0 && system.slice(at).includes(FACT);
};

/**
 * A strategy that is edge-chat itself: every turn a real `POST /v1/conversations/{id}/messages`
 * through the Worker (history assembly, the upstream call, the ledger). Today's Worker drops the
 * oldest messages that do not fit; a Worker with another prompt layout is measured the same way.
 * The input cost is the ledger's: its cost less the output at the output price.
 */
function workerStrategy(name, note, workerOf = (h) => ({ origin: h.edgeOrigin, shards: h.shards })) {
  return {
    name,
    note,
    async run(h, script) {
      const { origin, shards } = workerOf(h);
      const slug = name.replace(/\W+/g, "-");
      const user = `bench-token-economy-${slug}`;
      const [conversationId] = await h.createConversations(user, 1, origin);
      const headers = await h.edgeHeaders(user);
      /** @type {TurnRecord[]} */
      const records = [];
      let previous = null;
      for (const step of script) {
        // Tags (and so upstream bodies, and the stand-in's answers) are the same every run.
        const tag = `te-${slug}-${step.turn}`;
        const res = await jsonRequest(
          "POST",
          `${origin}/v1/conversations/${conversationId}/messages`,
          headers,
          {
            content: `${step.text} ${directive(step, tag)}`,
            model: TOKEN_ECONOMY_MODEL,
            parameters: { max_tokens: REPLY_TOKENS },
            stream: false,
          },
        );
        const answer = res.json?.assistant_message;
        if (res.status !== 200 || answer?.status !== "completed")
          throw new Error(`turn ${step.turn}: HTTP ${res.status} ${JSON.stringify(res.json).slice(0, 300)}`);
        // The user's rows are on one of the two shards.
        let row = null;
        for (const shard of shards) {
          row ??= await shard
            .prepare("SELECT cost_usd, completion_tokens FROM usage_records WHERE id = ?")
            .bind(answer.id)
            .first();
        }
        if (!row) throw new Error(`turn ${step.turn}: no usage record`);
        const body = loggedBody(h, tag);
        const prompt = promptText(body);
        const folded =
          previous !== null && JSON.stringify(prompt.slice(0, previous.length)) !== JSON.stringify(previous);
        previous = prompt;
        records.push({
          folded,
          turn: step.turn,
          sent: true,
          promptTokens: answer.usage.prompt_tokens,
          cachedTokens: answer.usage.cached_tokens,
          inputCostUsd: row.cost_usd - (row.completion_tokens * PRICE.output) / 1e6,
          carriesFact: JSON.stringify(body.messages).includes(FACT),
          viaSummary: summaryCarriesFact(body),
        });
      }
      // The running summary's calls, from the ledger: their whole cost counts as input (they
      // exist only to shorten prompts).
      let summaries = { calls: 0, costUsd: 0, promptTokens: 0, completionTokens: 0 };
      for (const shard of shards) {
        const row = await shard
          .prepare(
            `SELECT COUNT(*) AS calls, COALESCE(SUM(cost_usd), 0) AS cost, COALESCE(SUM(prompt_tokens), 0) AS prompt,
               COALESCE(SUM(completion_tokens), 0) AS completion
             FROM usage_records WHERE conversation_id = ? AND model = ?`,
          )
          .bind(conversationId, SUMMARY_MODEL)
          .first();
        summaries = {
          calls: summaries.calls + row.calls,
          costUsd: summaries.costUsd + row.cost,
          promptTokens: summaries.promptTokens + row.prompt,
          completionTokens: summaries.completionTokens + row.completion,
        };
      }
      // The plumbing: the first summary call given turn 1's line, and the calls after it that
      // were given a summary carrying the fact (turn 1's message itself long folded).
      const calls = h.standIn.requests.filter(
        (r) => r.model === SUMMARY_MODEL && JSON.stringify(r.body).includes(`te-${slug}-`),
      );
      const covering = calls.findIndex((r) => JSON.stringify(r.body).includes(`tag=te-${slug}-1 keep`));
      const relayed = calls.slice(covering + 1).filter((r) => JSON.stringify(r.body).includes(FACT)).length;
      return Object.assign(records, {
        summaries: {
          ...summaries,
          covering: covering < 0 ? null : covering + 1,
          relayed,
          seen: calls.length,
        },
      });
    },
  };
}

/**
 * The whole history every turn, straight to the stand-in, for as long as it fits the window (the
 * stand-in refuses a prompt over `max_input_tokens` as DashScope does; from then on every later
 * turn is longer still, so the strategy ends there).
 */
const sendEverything = {
  name: "send everything",
  note: "the whole history each turn, straight to the stand-in, while it fits the window",
  async run(h, script) {
    const messages = [
      { role: "system", content: h.config.vars.DEFAULT_SYSTEM_PROMPT ?? "You are a helpful assistant." },
    ];
    /** @type {TurnRecord[]} */
    const records = [];
    for (const step of script) {
      const tag = `te-all-${step.turn}`;
      messages.push({ role: "user", content: `${step.text} ${directive(step, tag)}` });
      const res = await jsonRequest("POST", h.directUrl, h.standInAuth, {
        model: TOKEN_ECONOMY_MODEL,
        messages,
        max_tokens: REPLY_TOKENS,
        max_input_tokens: TOKEN_ECONOMY_WINDOW - REPLY_TOKENS,
      });
      if (res.status === 400 && /Range of input length/.test(res.json?.error?.message ?? "")) {
        for (const rest of script.slice(step.turn - 1))
          records.push({
            turn: rest.turn,
            sent: false,
            promptTokens: 0,
            cachedTokens: 0,
            inputCostUsd: 0,
            carriesFact: false,
          });
        break;
      }
      if (res.status !== 200)
        throw new Error(`turn ${step.turn}: HTTP ${res.status} ${JSON.stringify(res.json)}`);
      const usage = res.json.usage;
      records.push({
        turn: step.turn,
        sent: true,
        promptTokens: usage.prompt_tokens,
        cachedTokens: usage.prompt_tokens_details?.cached_tokens ?? 0,
        inputCostUsd: inputCost(usage),
        carriesFact: JSON.stringify(messages).includes(FACT),
      });
      messages.push({ role: "assistant", content: res.json.choices[0].message.content });
    }
    return records;
  },
};

/** The strategies, in the table's order. */
const STRATEGIES = [
  workerStrategy(
    "drop oldest (edge-chat before blocks)",
    "a real Worker turn each time, on a Worker with `HISTORY_FOLD=off`: history that does not fit is dropped oldest first",
    (h) => {
      if (!h.dropOldestWorker) throw new Error("the harness was started without the drop-oldest Worker");
      return h.dropOldestWorker;
    },
  ),
  workerStrategy(
    "edge-chat layout",
    "a real Worker turn each time, as deployed (`HISTORY_FOLD` 90/50, `MIN_VERBATIM_TURNS` 6, `SUMMARY_MODEL` on: the stand-in's digest model priced as qwen-flash): history folds in blocks at 90% of the budget, keeping what follows the running summary asked for at 80%, which the block's prompts carry after the system prompt; qwen-plus is in `EXPLICIT_CACHE_MODELS`, so the block's anchor and the newest history message carry `cache_control`",
  ),
  sendEverything,
];

/** Totals of a run over its first `turns` turns (the summary calls' cost counted over the whole run). */
function totals(records, turns = records.length) {
  const sent = records.slice(0, turns).filter((r) => r.sent);
  const sum = (k) => sent.reduce((n, r) => n + r[k], 0);
  return {
    sent: sent.length,
    promptTokens: sum("promptTokens"),
    cachedTokens: sum("cachedTokens"),
    inputCostUsd: sum("inputCostUsd") + (turns === records.length ? (records.summaries?.costUsd ?? 0) : 0),
    largestPrompt: Math.max(0, ...sent.map((r) => r.promptTokens)),
    hitShare: sent.length ? sent.filter((r) => r.cachedTokens > 0).length / sent.length : Number.NaN,
  };
}

const usd = (v) => `$${v.toFixed(6)}`;
const pct = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : "—");

export async function runTokenEconomy(h) {
  const script = conversationScript(TURNS);
  const results = [];
  for (const strategy of STRATEGIES) {
    // Each strategy starts from an empty cache: no strategy hits what another created.
    const cleared = await jsonRequest("DELETE", `${h.standIn.origin}/__stand-in/cache`, {});
    if (cleared.status !== 200) throw new Error(`clearing the stand-in's cache: HTTP ${cleared.status}`);
    results.push({ strategy, records: await strategy.run(h, script) });
  }

  const metrics = {};
  const rows = [];
  const fitTurns = Math.min(...results.map((r) => r.records.filter((x) => x.sent).length));
  for (const { strategy, records } of results) {
    const all = totals(records);
    const last = records.at(-1);
    const key = strategy.name.split(" ")[0];
    Object.assign(metrics, {
      [`tokenEconomy.${key}.sent`]: all.sent,
      [`tokenEconomy.${key}.promptTokens`]: all.promptTokens,
      [`tokenEconomy.${key}.cachedTokens`]: all.cachedTokens,
      [`tokenEconomy.${key}.inputCostUsd`]: all.inputCostUsd,
      [`tokenEconomy.${key}.hitShare`]: all.hitShare,
    });
    const first = totals(records, fitTurns);
    const later = records.slice(fitTurns).filter((r) => r.sent);
    const laterHits = later.filter((r) => r.cachedTokens > 0).length;
    metrics[`tokenEconomy.${key}.hitShareAfterFit`] = later.length ? laterHits / later.length : Number.NaN;
    const firstFold = records.findIndex((r) => r.folded);
    const afterFold = firstFold < 0 ? [] : records.slice(firstFold + 1).filter((r) => r.sent);
    const afterFoldHits = afterFold.filter((r) => r.cachedTokens > 0).length;
    metrics[`tokenEconomy.${key}.firstFoldTurn`] = firstFold < 0 ? null : firstFold + 1;
    metrics[`tokenEconomy.${key}.hitShareAfterFirstFold`] = afterFold.length
      ? afterFoldHits / afterFold.length
      : Number.NaN;
    metrics[`tokenEconomy.${key}.folds`] = records.filter((r) => r.folded).length;
    metrics[`tokenEconomy.${key}.largestPrompt`] = all.largestPrompt;
    metrics[`tokenEconomy.${key}.carriesFact`] = last.sent && last.carriesFact;
    if (records.summaries) {
      metrics[`tokenEconomy.${key}.summaryCalls`] = records.summaries.calls;
      metrics[`tokenEconomy.${key}.summaryCostUsd`] = records.summaries.costUsd;
      metrics[`tokenEconomy.${key}.summaryCoveringTurn1`] = records.summaries.covering;
      metrics[`tokenEconomy.${key}.summariesRelayingFact`] = records.summaries.relayed;
    }
    rows.push([
      strategy.name,
      `${all.sent} of ${records.length}`,
      all.promptTokens.toLocaleString("en"),
      all.cachedTokens.toLocaleString("en"),
      usd(all.inputCostUsd),
      records.summaries
        ? `${records.summaries.calls}; ${usd(records.summaries.costUsd)} (${records.summaries.promptTokens.toLocaleString("en")} in, ${records.summaries.completionTokens.toLocaleString("en")} out)`
        : "—",
      pct(all.hitShare),
      all.largestPrompt.toLocaleString("en"),
      last.sent ? (last.carriesFact ? (last.viaSummary ? "yes, in the summary" : "yes") : "no") : "not sent",
      `${first.promptTokens.toLocaleString("en")} / ${first.cachedTokens.toLocaleString("en")} / ${usd(first.inputCostUsd)} / ${pct(first.hitShare)}`,
      later.length ? `${laterHits} of ${later.length}` : "—",
      firstFold < 0
        ? "—"
        : `turn ${firstFold + 1}; ${records.filter((r) => r.folded).length} folds; ${afterFoldHits} of ${afterFold.length} (${pct(afterFoldHits / afterFold.length)})`,
    ]);
  }
  const markdown = section(
    "Token economy (issue 17)",
    `One scripted ${TURNS}-turn conversation (user messages ≈ 60–2,000 characters, answers 120–450 stand-in tokens; turn 1 states "${FACT}", turn ${TURNS} asks for it) on \`${TOKEN_ECONOMY_MODEL}\` (window ${TOKEN_ECONOMY_WINDOW.toLocaleString("en")} tokens, \`max_tokens\` ${REPLY_TOKENS}), against the stand-in's context cache (implicit hits in 256-token blocks). Input priced at qwen-plus's ${PRICE.input} USD per 1M tokens, implicit hits at 20%, explicit hits at 10%, explicit creation at 125%. The cache is cleared before each strategy.`,
    table(
      [
        "strategy",
        "turns sent",
        "prompt tokens",
        "cached tokens",
        "billed input (with summary calls)",
        "summary calls; their cost",
        "turns with a hit",
        "largest prompt",
        `turn ${TURNS} carries the fact`,
        `first ${fitTurns} turns: prompt / cached / input / hit share`,
        `turns with a hit after turn ${fitTurns}`,
        "first fold; folds; turns with a hit after the first fold",
      ],
      rows,
    ),
    [
      ...STRATEGIES.map((s) => `${s.name}: ${s.note}.`),
      `"First ${fitTurns} turns" compares the strategies over the turns all of them sent (summary calls not counted there).`,
      `Billed input includes the running summary's calls at their whole cost (input and output, qwen-flash's prices: they exist only to shorten prompts). The stand-in cannot summarise; its digest model answers with the lines of its input carrying \`keep\` (turn 1's). edge-chat layout: summary call ${metrics["tokenEconomy.edge-chat.summaryCoveringTurn1"] ?? "—"} of ${metrics["tokenEconomy.edge-chat.summaryCalls"] ?? 0} was given turn 1's message with the fact; ${metrics["tokenEconomy.edge-chat.summariesRelayingFact"] ?? 0} later calls were given a summary carrying it, and turn ${TURNS}'s prompt carries it ${metrics["tokenEconomy.edge-chat.carriesFact"] ? "in its summary" : "nowhere"}. Largest prompt: the window is ${TOKEN_ECONOMY_WINDOW.toLocaleString("en")} tokens with ${REPLY_TOKENS.toLocaleString("en")} for the reply.`,
      `A fold is a turn whose prompt does not start with the whole previous prompt (markers aside). Billed input of edge-chat's layout: ${pct(metrics["tokenEconomy.edge-chat.inputCostUsd"] / metrics["tokenEconomy.drop.inputCostUsd"])} of drop oldest's (target ≤ 35%); turns with a hit after its first fold: ${pct(metrics["tokenEconomy.edge-chat.hitShareAfterFirstFold"])} (target ≥ 90%).`,
    ],
  );
  metrics["tokenEconomy.fitTurns"] = fitTurns;
  return { markdown, metrics };
}
