/**
 * The floor of the runtime: a module Worker that forwards the request body to the DashScope stand-in's
 * chat/completions URL and returns the upstream response as is. No auth, no storage, no parsing.
 * Bindings: UPSTREAM_URL, UPSTREAM_API_KEY.
 */
export default {
  async fetch(request, env) {
    return fetch(env.UPSTREAM_URL, {
      method: "POST",
      headers: { authorization: `Bearer ${env.UPSTREAM_API_KEY}`, "content-type": "application/json" },
      body: request.body,
    });
  },
};
