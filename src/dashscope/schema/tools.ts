import * as z from "zod";
import { WHEN_VALID } from "./when-valid";

/** Function names DashScope accepts (OpenAI's rule). */
export const TOOL_NAME_PATTERN = /^[a-zA-Z0-9_-]{1,64}$/;
/** Reserved by DashScope's built-in web search: `Tool names are not allowed to be [search]`. */
export const RESERVED_TOOL_NAMES: ReadonlySet<string> = new Set(["search"]);

const toolName = z
  .string()
  .regex(TOOL_NAME_PATTERN, { error: 'must be 1-64 letters, digits, "_" or "-"' })
  .refine((name) => !RESERVED_TOOL_NAMES.has(name), {
    error: 'must not be "search", which DashScope reserves',
  });

/** A JSON Schema describing a function's arguments; its root must describe an object. */
const parametersJsonSchema = z.record(z.string(), z.unknown()).superRefine((schema, ctx) => {
  if ("type" in schema && schema.type !== "object") {
    ctx.addIssue({
      code: "custom",
      path: ["type"],
      message: 'must be "object": function arguments are a JSON object',
    });
  }
}, WHEN_VALID);

export const toolSchema = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({
    name: toolName,
    description: z.string().optional(),
    parameters: parametersJsonSchema.optional(),
  }),
});

/**
 * Most tools a request may define: OpenAI's documented cap (DashScope documents none). Each
 * definition is sent with every request and counts against the model's context.
 */
export const MAX_TOOLS = 128;

/** `tools`: 1 (`[] is too short`) to {@link MAX_TOOLS}, names unique so a call is unambiguous. */
export const toolsSchema = z
  .array(toolSchema)
  .min(1)
  .max(MAX_TOOLS)
  .superRefine((tools, ctx) => {
    const seen = new Set<string>();
    tools.forEach((tool, i) => {
      if (seen.has(tool.function.name)) {
        ctx.addIssue({
          code: "custom",
          path: [i, "function", "name"],
          message: "duplicates the name of an earlier tool",
        });
      }
      seen.add(tool.function.name);
    });
  }, WHEN_VALID);

/** Forces one named function. */
export const namedToolChoiceSchema = z.strictObject({
  type: z.literal("function"),
  function: z.strictObject({ name: z.string().min(1) }),
});

/** `auto` (default), `none`, `required` (newer non-thinking models), or one named function. */
export const toolChoiceSchema = z.union([z.enum(["auto", "none", "required"]), namedToolChoiceSchema], {
  error: 'must be "auto", "none", "required" or {"type": "function", "function": {"name": …}}',
});
