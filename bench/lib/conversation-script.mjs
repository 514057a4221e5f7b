/**
 * A scripted long conversation for the token-economy bench: the same 200 user messages every run
 * (a seeded PRNG, no clock), each asking for an answer of a given length from the stand-in.
 *
 * Lengths follow what a chat app sees: most user messages are one to three sentences (≈ 60–400
 * characters), one in ten pastes a paragraph or two (≈ 1,200–2,000 characters); answers are
 * 120–450 tokens. Turn 1 states a fact (a name and a codename); the last turn asks for it back.
 */

/** What turn 1 states and the last turn asks about; a prompt "carries the fact" when it contains this. */
export const FACT = "codename BLUE HERON";
const FIRST_MESSAGE =
  "Hi! I'm Ilse, I run the logistics team at a small bakery chain. Before we start: our planning " +
  `project has the ${FACT}; please keep that in mind, I will refer to it later. Today I'd like help ` +
  "with our delivery routes and some staffing questions.";
const LAST_MESSAGE =
  "Before I go: what was the codename of our planning project that I told you at the very start?";

const TOPICS = [
  "delivery routes between the north and east shops",
  "the early shift rota for the weekend",
  "flour supplier prices going up next quarter",
  "a temperature alarm in the van fleet",
  "the holiday orders forecast",
  "training two new drivers",
  "how to word a message to a late customer",
  "whether to add a second oven at the central bakery",
];
const SENTENCES = [
  "Could you go over that again with the numbers we discussed?",
  "I think the second option works better for us, but I'm not sure about the cost.",
  "One of the drivers mentioned that the morning traffic near the ring road is getting worse.",
  "We have about forty stops on a normal weekday and sixty on Saturdays.",
  "The team would like a short summary they can read on their phones.",
  "Last year we ran out of rye bread twice in December, which we want to avoid.",
  "Please keep it practical; we don't have a data team.",
  "What would you change first if you were in my place?",
];

/** mulberry32: a small seeded PRNG, so every run replays the same script. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The turns, 1-based in `turn`: the user's text (without stand-in directives) and the answer's length
 * in stand-in tokens.
 * @param {number} [turns]
 * @returns {{ turn: number, text: string, answerTokens: number }[]}
 */
export function conversationScript(turns = 200) {
  const random = prng(20261130);
  const pick = (list) => list[Math.floor(random() * list.length)];
  const script = [];
  for (let turn = 1; turn <= turns; turn++) {
    let text;
    if (turn === 1) text = FIRST_MESSAGE;
    else if (turn === turns) text = LAST_MESSAGE;
    else if (random() < 0.1) {
      // A pasted note: a paragraph or two.
      const count = 14 + Math.floor(random() * 10);
      text = `Here is the note from ${pick(TOPICS)}: ${Array.from({ length: count }, () => pick(SENTENCES)).join(" ")}`;
    } else {
      const count = 1 + Math.floor(random() * 3);
      text = `About ${pick(TOPICS)}: ${Array.from({ length: count }, () => pick(SENTENCES)).join(" ")}`;
    }
    script.push({ turn, text, answerTokens: 120 + Math.floor(random() * 331) });
  }
  return script;
}
