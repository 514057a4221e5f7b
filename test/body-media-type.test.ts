import { describe, expect, it } from "vitest";
import { expectError, newUser } from "./helpers/api";
import { BODY_ROUTES, countedStream, jsonBytes, sendBody } from "./helpers/json-routes";

describe.each(BODY_ROUTES)("$name", ({ prepare }) => {
  it.each([
    ["text/plain", "text/plain"],
    ["text/plain with charset", "text/plain;charset=UTF-8"],
    ["a form", "application/x-www-form-urlencoded"],
    ["an XML type", "application/xml"],
    ["a JSON type in another charset", "application/json; charset=iso-8859-1"],
    ["no Content-Type", undefined],
  ])("refuses a JSON body sent as %s with 415 unsupported_media_type and stores nothing", async (_, type) => {
    const route = await prepare(newUser("media"));
    const error = await expectError(
      await sendBody(route, jsonBytes(route.valid), type),
      415,
      "unsupported_media_type",
    );
    expect(error.message).toMatch(/JSON|UTF-8/);
    await route.expectNothingStored();
  });

  it("reads a refused 10 MB text/plain body to its end before answering 415, so the client gets the answer", async () => {
    const route = await prepare(newUser("media"));
    const { stream, state } = countedStream(10 * 1024 * 1024);
    await expectError(await sendBody(route, stream, "text/plain"), 415, "unsupported_media_type");
    expect(state).toEqual({ pulled: 10 * 1024 * 1024, cancelled: false });
    await route.expectNothingStored();
  });

  it.each([
    "application/json",
    "application/json; charset=utf-8",
    'application/json;charset="UTF-8"',
    "Application/JSON",
    "application/merge-patch+json",
    "application/vnd.api+json",
  ])("accepts a JSON body sent as %s", async (type) => {
    const route = await prepare(newUser("media"));
    const res = await sendBody(route, jsonBytes(route.valid), type);
    expect(res.status, await res.clone().text()).toBeLessThan(300);
  });
});
