import * as z from "zod";

/**
 * A JSON value, as the JSON columns hold it. Typed rather than `unknown` because a value typed
 * `unknown` is not `Rpc.Serializable`, and a message carrying one drops out of the Durable
 * Object stub's result types. Arrays and objects recurse through interfaces: written as
 * `JsonValue[]`, the recursion makes `Rpc.Serializable` and `Rpc.Stubify` (workers-types)
 * instantiate without end (TS2589), while an interface is expanded only when it is compared.
 */
export type JsonValue = string | number | boolean | null | JsonArray | JsonObject;
interface JsonArray extends Array<JsonValue> {}
export interface JsonObject {
  [key: string]: JsonValue;
}

/**
 * A field that holds JSON of a shape described elsewhere: typed {@link JsonValue} so the types
 * inferred from the resource schemas stay serializable. Not used to parse (the store reads back
 * what was validated on the way in); the document describes such a field with the schema it was
 * validated with, or as any JSON.
 */
export const jsonValueSchema = z.custom<JsonValue>();
