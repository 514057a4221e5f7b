import { exports } from "cloudflare:workers";
import { expect, it } from "vitest";

it("answers /healthz", async () => {
  const res = await exports.default.fetch("http://localhost/healthz");
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: "ok" });
});

it("answers an unknown route with the JSON error envelope", async () => {
  const res = await exports.default.fetch("http://localhost/nope");
  expect(res.status).toBe(404);
  expect(await res.json()).toMatchObject({ error: { code: "not_found" } });
});
