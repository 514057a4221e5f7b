import { describe, expect, it } from "vitest";
import { expectError, newUser } from "./helpers/api";
import { BODY_ROUTES, bodyWithBytes, sendBody } from "./helpers/json-routes";

/** Byte sequences that are not UTF-8 (WHATWG Encoding, "UTF-8 decoder"). */
const NOT_UTF8: [string, number[]][] = [
  ["a lone continuation byte", [0x80]],
  ["bytes that never occur in UTF-8", [0xff, 0xfe]],
  ["an overlong encoding of '/'", [0xc0, 0xaf]],
  ["a sequence cut short", [0xe2, 0x82]],
  ["an encoded UTF-16 surrogate", [0xed, 0xa0, 0x80]],
];

describe.each(BODY_ROUTES)("$name", ({ prepare }) => {
  it.each(NOT_UTF8)(
    "refuses a body with %s with 400 'not valid UTF-8' instead of replacing it, and stores nothing",
    async (_, bytes) => {
      const route = await prepare(newUser("utf8"));
      const error = await expectError(
        await sendBody(route, bodyWithBytes(route, bytes), "application/json"),
        400,
        "invalid_request",
      );
      expect(error.message).toBe("The request body is not valid UTF-8.");
      await route.expectNothingStored();
    },
  );

  it("accepts well-formed multi-byte text", async () => {
    const route = await prepare(newUser("utf8"));
    const body = route.withText?.("héllo 世界 🙂") ?? route.valid;
    const res = await sendBody(route, new TextEncoder().encode(JSON.stringify(body)), "application/json");
    expect(res.status, await res.clone().text()).toBeLessThan(300);
  });
});
