import { describe, expect, it } from "vitest";
import { UpstreamError, upstreamErrorFromStreamError } from "../src/chat/upstream-error";
import {
  classifyUpstreamError,
  cleanUpstreamMessage,
  DEFAULT_RATE_LIMIT_RETRY_AFTER_MS,
  parseUpstreamErrorBody,
  UPSTREAM_NETWORK_CODE,
  UPSTREAM_TIMEOUT_CODE,
  type UpstreamErrorInput,
} from "../src/dashscope/errors";
import { decodeDashScopeStream } from "../src/dashscope/stream";
import type { StreamErrorInfo } from "../src/dashscope/types";

/** Classifies an upstream failure (`dashscope/`) and maps it to our error (`chat/`), as a turn does. */
function mapUpstreamError(input: UpstreamErrorInput): UpstreamError {
  return new UpstreamError(classifyUpstreamError(input));
}

/** Maps a full upstream error body the way the client does. */
function mapBody(status: number, body: string, retryAfterMs: number | null = null): UpstreamError {
  const parsed = parseUpstreamErrorBody(body);
  return mapUpstreamError({ status, ...parsed, retryAfterMs, phase: "pre-stream" });
}

const DOC = "https://help.aliyun.com/zh/model-studio/error-code";

interface Row {
  name: string;
  status: number;
  body: string;
  expected: { status: number; code: string; retryable: boolean; param?: string; upstreamCode: string | null };
}

// Every row of PROTOCOL.md §3.2, with bodies as DashScope sends them (fixtures and §10 T4 inline).
const TABLE: Row[] = [
  {
    name: "400 invalid_parameter_error (context overflow)",
    status: 400,
    body: '{"error":{"code":"invalid_parameter_error","message":"<400> InternalError.Algo.InvalidParameter: Range of input length should be [1, 983616]","param":null,"type":"invalid_request_error"},"request_id":"5b0d4a5e-0000-4000-8000-000000000001"}',
    expected: {
      status: 400,
      code: "invalid_request",
      retryable: false,
      param: "messages",
      upstreamCode: "invalid_parameter_error",
    },
  },
  {
    name: "400 invalid_parameter_error (other)",
    status: 400,
    body: `{"error":{"code":"invalid_parameter_error","message":"'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.","param":null,"type":"invalid_request_error"},"request_id":"r"}`,
    expected: {
      status: 400,
      code: "invalid_request",
      retryable: false,
      upstreamCode: "invalid_parameter_error",
    },
  },
  {
    name: "400 invalid_value",
    status: 400,
    body: `{"error":{"message":"-1 is lesser than the minimum of 0 - 'seed'","type":"invalid_request_error","param":null,"code":"invalid_value"}}`,
    expected: { status: 400, code: "invalid_request", retryable: false, upstreamCode: "invalid_value" },
  },
  {
    name: "400 data_inspection_failed",
    status: 400,
    body: '{"error":{"message":"Input data may contain inappropriate content. For details, see: https://help.aliyun.com/zh/model-studio/error-code#inappropriate-content","type":"data_inspection_failed","param":null,"code":"data_inspection_failed"},"id":"chatcmpl-c2b25c93-9684-4d7e-91df-793f0cdbef88","request_id":"c2b25c93-9684-4d7e-91df-793f0cdbef88"}',
    expected: {
      status: 422,
      code: "content_filtered",
      retryable: false,
      upstreamCode: "data_inspection_failed",
    },
  },
  {
    name: "400 Arrearage",
    status: 400,
    body: `{"error":{"message":"Access denied, please make sure your account is in good standing. For details, see: ${DOC}#overdue-payment","type":"Arrearage","param":null,"code":"Arrearage"},"request_id":"8605e472-0000-4000-8000-000000000000"}`,
    expected: { status: 502, code: "upstream_error", retryable: false, upstreamCode: "Arrearage" },
  },
  {
    name: "401 invalid_api_key",
    status: 401,
    body: '{"error":{"message":"Incorrect API key provided. For details, see: https://help.aliyun.com/zh/model-studio/error-code#apikey-error","type":"invalid_request_error","param":null,"code":"invalid_api_key"},"request_id":"10838285-1df1-974b-ad13-820047fbab0d"}',
    expected: { status: 502, code: "upstream_error", retryable: false, upstreamCode: "invalid_api_key" },
  },
  ...["access_denied", "Model.AccessDenied", "AccessDenied.Unpurchased", "AllocationQuota.FreeTierOnly"].map(
    (code): Row => ({
      name: `403 ${code}`,
      status: 403,
      body: JSON.stringify({
        error: { message: "Access denied.", type: "invalid_request_error", param: null, code },
      }),
      expected: { status: 502, code: "upstream_error", retryable: false, upstreamCode: code },
    }),
  ),
  {
    name: "404 model_not_found",
    status: 404,
    body: '{"error":{"message":"The model `qwen-foo` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"},"request_id":"r"}',
    expected: {
      status: 400,
      code: "invalid_request",
      retryable: false,
      param: "model",
      upstreamCode: "model_not_found",
    },
  },
  {
    name: "404 model_not_supported",
    status: 404,
    body: '{"error":{"message":"Unsupported model xxx for OpenAI compatibility mode.","type":"invalid_request_error","code":"model_not_supported"}}',
    expected: {
      status: 400,
      code: "invalid_request",
      retryable: false,
      param: "model",
      upstreamCode: "model_not_supported",
    },
  },
  {
    name: "429 limit_requests",
    status: 429,
    body: '{"error":{"message":"You have exceeded your current request limit. For details, see: https://help.aliyun.com/zh/model-studio/error-code#rate-limit","type":"limit_requests","param":null,"code":"limit_requests"},"request_id":"7c335491-b152-9fd2-bb2a-37201068fb94"}',
    expected: { status: 429, code: "rate_limited", retryable: true, upstreamCode: "limit_requests" },
  },
  {
    name: "429 limit_requests without param/request_id",
    status: 429,
    body: '{"error":{"message":"You have exceeded your current request limit.","type":"limit_requests","code":"limit_requests"}}',
    expected: { status: 429, code: "rate_limited", retryable: true, upstreamCode: "limit_requests" },
  },
  {
    name: "429 limit_burst_rate",
    status: 429,
    body: '{"error":{"message":"Request rate increased too quickly.","code":"limit_burst_rate"}}',
    expected: { status: 429, code: "rate_limited", retryable: true, upstreamCode: "limit_burst_rate" },
  },
  ...["Throttling.RateQuota", "Throttling.RateLimit", "Throttling.BurstRate"].map(
    (code): Row => ({
      name: `429 native ${code}`,
      status: 429,
      body: JSON.stringify({
        request_id: "r",
        code,
        message: "Requests rate limit exceeded, please try again later.",
      }),
      expected: { status: 429, code: "rate_limited", retryable: true, upstreamCode: code },
    }),
  ),
  {
    name: "429 insufficient_quota",
    status: 429,
    body: '{"error":{"type":"insufficient_quota","code":"insufficient_quota","message":"You exceeded your current quota, please check your plan and billing details."}}',
    expected: { status: 429, code: "rate_limited", retryable: false, upstreamCode: "insufficient_quota" },
  },
  {
    name: "429 native Throttling.AllocationQuota",
    status: 429,
    body: '{"request_id":"r","code":"Throttling.AllocationQuota","message":"Allocated quota exceeded, please increase your quota limit."}',
    expected: {
      status: 429,
      code: "rate_limited",
      retryable: false,
      upstreamCode: "Throttling.AllocationQuota",
    },
  },
  {
    name: "500 internal_error",
    status: 500,
    body: '{"error":{"message":"An internal error has occured, please try again later or contact service support.","type":"internal_error","code":"internal_error"}}',
    expected: { status: 502, code: "upstream_error", retryable: true, upstreamCode: "internal_error" },
  },
  {
    name: "500 InternalError.Algo variant",
    status: 500,
    body: '{"request_id":"r","code":"InternalError.Algo","message":"<500> InternalError.Algo: An error occurred in model serving."}',
    expected: { status: 502, code: "upstream_error", retryable: true, upstreamCode: "InternalError.Algo" },
  },
  {
    name: "503 ModelServingError",
    status: 503,
    body: '{"error":{"message":"Too many requests. Your requests are being throttled due to system capacity limits.","code":"ModelServingError"}}',
    expected: { status: 502, code: "upstream_error", retryable: true, upstreamCode: "ModelServingError" },
  },
  {
    name: "503 ModelUnavailable",
    status: 503,
    body: '{"code":"ModelUnavailable","message":"Model is unavailable, please try again later."}',
    expected: { status: 502, code: "upstream_error", retryable: true, upstreamCode: "ModelUnavailable" },
  },
];

describe("mapUpstreamError over PROTOCOL.md §3.2", () => {
  it.each(TABLE)("$name", ({ status, body, expected }) => {
    const error = mapBody(status, body);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.status).toBe(expected.status);
    expect(error.code).toBe(expected.code);
    expect(error.retryable).toBe(expected.retryable);
    expect(error.param).toBe(expected.param);
    expect(error.upstreamStatus).toBe(status);
    expect(error.upstreamCode).toBe(expected.upstreamCode);
    expect(error.phase).toBe("pre-stream");
    // The link DashScope appends is never relayed.
    expect(error.message).not.toContain("For details");
    expect(error.message).not.toContain("http");
  });

  it("keeps the request id from the body", () => {
    const error = mapBody(401, TABLE.find((r) => r.name.startsWith("401"))!.body);
    expect(error.requestId).toBe("10838285-1df1-974b-ad13-820047fbab0d");
  });

  it("says the conversation is too long and names the model's input limit", () => {
    const error = mapBody(400, TABLE[0]!.body);
    expect(error.message).toMatch(/conversation is too long/i);
    expect(error.message).toContain("983616");
    expect(error.message).not.toContain("InternalError");
  });

  it("relays DashScope's own words about a bad parameter, without prefix or link", () => {
    const error = mapBody(
      400,
      '{"error":{"code":"invalid_parameter_error","message":"<400> InternalError.Algo.InvalidParameter: Range of max_tokens should be [1, 32768]. For details, see: https://help.aliyun.com/zh/model-studio/error-code#x","param":null,"type":"invalid_request_error"}}',
    );
    expect(error.message).toBe("Range of max_tokens should be [1, 32768].");
  });

  it("names the missing model in a model_not_found error", () => {
    expect(mapBody(404, TABLE.find((r) => r.name === "404 model_not_found")!.body).message).toContain(
      "qwen-foo",
    );
  });

  it("answers credential problems with a generic message that reveals nothing about the key", () => {
    for (const [status, code] of [
      [401, "invalid_api_key"],
      [403, "access_denied"],
      [400, "Arrearage"],
    ] as const) {
      const error = mapBody(
        status,
        JSON.stringify({
          error: {
            message: "Incorrect API key provided: sk-abcdef123456.",
            type: "invalid_request_error",
            code,
          },
        }),
      );
      expect(error.message).toBe("The model provider rejected this service's credentials.");
      expect(JSON.stringify(error.toBody())).not.toContain("sk-");
    }
  });

  it("never relays something shaped like an API key, even in relayed text", () => {
    const error = mapBody(
      400,
      JSON.stringify({ error: { code: "invalid_value", message: "bad key sk-0123456789abcdef in header" } }),
    );
    expect(error.code).toBe("invalid_request");
    expect(error.message).not.toContain("sk-0123456789abcdef");
  });

  it("separates input and output moderation in the message", () => {
    const input = mapBody(400, TABLE.find((r) => r.name === "400 data_inspection_failed")!.body);
    const output = mapUpstreamError({
      status: null,
      code: "data_inspection_failed",
      message: "Output data may contain inappropriate content.",
      phase: "mid-stream",
    });
    expect(input.message).toMatch(/request/);
    expect(output.message).toMatch(/answer/);
  });
});

describe("mapUpstreamError: Retry-After on 429s", () => {
  const limitRequests = TABLE.find((r) => r.name === "429 limit_requests")!.body;

  it("defaults to 60 s when DashScope sent none", () => {
    const error = mapBody(429, limitRequests);
    expect(error.retryAfterMs).toBe(DEFAULT_RATE_LIMIT_RETRY_AFTER_MS);
    expect(error.toResponse().headers.get("Retry-After")).toBe("60");
  });

  it("uses DashScope's Retry-After when there is one", async () => {
    const error = mapBody(429, limitRequests, 7_000);
    expect(error.retryAfterMs).toBe(7_000);
    const response = error.toResponse();
    expect(response.status).toBe(429);
    expect(response.headers.get("Retry-After")).toBe("7");
    expect(await response.json()).toEqual({ error: { code: "rate_limited", message: error.message } });
  });

  it("also tells a quota-exhausted caller when to come back", () => {
    const error = mapBody(429, TABLE.find((r) => r.name === "429 insufficient_quota")!.body);
    expect(error.retryable).toBe(false);
    expect(error.toResponse().headers.get("Retry-After")).toBe("60");
  });

  it("sets no Retry-After on other errors", () => {
    expect(mapBody(500, "{}").toResponse().headers.get("Retry-After")).toBeNull();
  });
});

describe("mapUpstreamError: statuses without a known code", () => {
  it.each([
    [500, 502, "upstream_error", true],
    [502, 502, "upstream_error", true],
    [503, 502, "upstream_error", true],
    [599, 502, "upstream_error", true],
    [504, 504, "upstream_timeout", true],
    [429, 429, "rate_limited", true],
    [401, 502, "upstream_error", false],
    [403, 502, "upstream_error", false],
    [400, 502, "upstream_error", false],
    [404, 502, "upstream_error", false],
    [418, 502, "upstream_error", false],
  ] as const)("HTTP %i → %i %s", (status, ourStatus, code, retryable) => {
    const error = mapBody(status, "<html><body>gateway says no</body></html>");
    expect([error.status, error.code, error.retryable]).toEqual([ourStatus, code, retryable]);
    expect(error.upstreamCode).toBeNull();
  });

  it("maps first-byte timeouts to 504 upstream_timeout, retryable", () => {
    const error = mapUpstreamError({ status: null, code: UPSTREAM_TIMEOUT_CODE, phase: "pre-stream" });
    expect([error.status, error.code, error.retryable]).toEqual([504, "upstream_timeout", true]);
  });

  it("maps network failures to 502 upstream_error, retryable", () => {
    const error = mapUpstreamError({ status: null, code: UPSTREAM_NETWORK_CODE, phase: "pre-stream" });
    expect([error.status, error.code, error.retryable]).toEqual([502, "upstream_error", true]);
  });

  it("matches codes case-insensitively and by `type` when `code` is missing", () => {
    expect(mapBody(400, '{"error":{"type":"arrearage","message":"x"}}').status).toBe(502);
    expect(mapBody(400, '{"error":{"type":"data_inspection_failed"}}').code).toBe("content_filtered");
    expect(mapBody(429, '{"error":{"code":"LIMIT_REQUESTS"}}').retryable).toBe(true);
  });
});

describe("mapUpstreamError: native dotted codes", () => {
  it.each([
    ["InvalidParameter", 400, 400, "invalid_request", false],
    ["InternalError.Algo.InvalidParameter", 400, 400, "invalid_request", false],
    ["InternalError.Algo", null, 502, "upstream_error", true],
    ["Throttling.SomethingNew", null, 429, "rate_limited", true],
    ["AccessDenied.Unpurchased", null, 502, "upstream_error", false],
  ] as const)("%s (HTTP %s) → %i %s", (code, status, ourStatus, ourCode, retryable) => {
    const error = mapUpstreamError({ status, code, message: "m", phase: "mid-stream" });
    expect([error.status, error.code, error.retryable]).toEqual([ourStatus, ourCode, retryable]);
  });
});

describe("parseUpstreamErrorBody", () => {
  it.each([
    [
      "not JSON",
      "upstream connect error or disconnect/reset before headers",
      { code: null, type: null, message: null, requestId: null },
    ],
    ["empty", "", { code: null, type: null, message: null, requestId: null }],
    ["an array", "[1,2]", { code: null, type: null, message: null, requestId: null }],
    ["null", "null", { code: null, type: null, message: null, requestId: null }],
    ["error as a string", '{"error":"boom"}', { code: null, type: null, message: "boom", requestId: null }],
    [
      "code first, numbers",
      '{"error":{"code":429,"message":"m"}}',
      { code: "429", type: null, message: "m", requestId: null },
    ],
    [
      "native shape",
      '{"request_id":"abc","code":"Throttling.RateQuota","message":"Requests rate limit exceeded"}',
      { code: "Throttling.RateQuota", type: null, message: "Requests rate limit exceeded", requestId: "abc" },
    ],
    [
      "fields of the wrong type",
      '{"error":{"code":null,"type":{"x":1},"message":["a"]},"request_id":7}',
      { code: null, type: null, message: null, requestId: "7" },
    ],
  ])("reads %s", (_name, text, expected) => {
    expect(parseUpstreamErrorBody(text)).toEqual(expected);
  });

  it("maps a body it could not read by status alone", () => {
    const error = mapBody(503, "Service Unavailable");
    expect([error.status, error.code, error.retryable]).toEqual([502, "upstream_error", true]);
  });
});

describe("cleanUpstreamMessage", () => {
  it("strips the international documentation link too", () => {
    expect(
      cleanUpstreamMessage(
        "Incorrect API key provided. For details, see: https://www.alibabacloud.com/help/en/model-studio/error-code#apikey-error",
      ),
    ).toBe("Incorrect API key provided.");
  });
});

// Fixture bodies: ../shared/dashscope/fixtures/stream-midstream-error-*.sse
const OPENAI_SHAPE_FRAME =
  '{"error":{"code":"data_inspection_failed","param":null,"message":"Output data may contain inappropriate content. For details, see: https://help.aliyun.com/zh/model-studio/error-code#inappropriate-content","type":"data_inspection_failed"},"id":"chatcmpl-8d1ef3ff-dfa9-98ef-854f-e2942931508b"}';
const NATIVE_FRAME_DATA =
  '{"request_id":"70acdc21-a546-489a-b5d6-650df970a4ef","code":"Throttling.AllocationQuota","message":"Allocated quota exceeded, please increase your quota limit."}';

describe("upstreamErrorFromStreamError (mid-stream)", () => {
  it("maps the OpenAI-shape moderation frame to 422 content_filtered", () => {
    const info: StreamErrorInfo = {
      shape: "openai",
      status: null,
      code: "data_inspection_failed",
      message: JSON.parse(OPENAI_SHAPE_FRAME).error.message,
      requestId: null,
    };
    const error = upstreamErrorFromStreamError(info);
    expect([error.status, error.code, error.phase, error.retryable]).toEqual([
      422,
      "content_filtered",
      "mid-stream",
      false,
    ]);
    expect(error.upstreamStatus).toBeNull();
    expect(error.message).toMatch(/answer/);
  });

  it("maps the native throttling frame with its :HTTP_STATUS to 429 rate_limited", () => {
    const data = JSON.parse(NATIVE_FRAME_DATA);
    const error = upstreamErrorFromStreamError({
      shape: "native",
      status: 429,
      code: data.code,
      message: data.message,
      requestId: data.request_id,
    });
    expect([error.status, error.code, error.phase, error.retryable]).toEqual([
      429,
      "rate_limited",
      "mid-stream",
      false,
    ]);
    expect(error.upstreamStatus).toBe(429);
    expect(error.requestId).toBe("70acdc21-a546-489a-b5d6-650df970a4ef");
    expect(error.toResponse().headers.get("Retry-After")).toBe("60");
  });

  it("maps a native rate-limit frame as retryable", () => {
    const error = upstreamErrorFromStreamError({
      shape: "native",
      status: 429,
      code: "Throttling.RateLimit",
      message: "m",
      requestId: null,
    });
    expect([error.code, error.retryable]).toEqual(["rate_limited", true]);
  });

  it("maps a malformed frame to 502 upstream_error", () => {
    const error = upstreamErrorFromStreamError({
      shape: "malformed",
      status: null,
      code: "malformed_frame",
      message: "{not json",
      requestId: null,
    });
    expect([error.status, error.code]).toEqual([502, "upstream_error"]);
    expect(error.message).not.toContain("not json");
  });

  it.each([
    [
      "OpenAI shape",
      `data: {"choices":[{"delta":{"content":"Here is the summary"},"finish_reason":null,"index":0,"logprobs":null}],"object":"chat.completion.chunk","usage":null,"created":1770000000,"system_fingerprint":null,"model":"qwen-plus","id":"chatcmpl-8d1ef3ff-dfa9-98ef-854f-e2942931508b"}\n\ndata: ${OPENAI_SHAPE_FRAME}\n\n`,
      { status: 422, code: "content_filtered" },
    ],
    [
      "native frame",
      `id:1\nevent:error\n:HTTP_STATUS/429\ndata:${NATIVE_FRAME_DATA}\n\n`,
      { status: 429, code: "rate_limited" },
    ],
  ])("maps the %s as decoded from the wire", async (_name, wire, expected) => {
    const body = new Response(wire).body!;
    const errors: UpstreamError[] = [];
    for await (const event of decodeDashScopeStream(body)) {
      if (event.type === "error") errors.push(upstreamErrorFromStreamError(event.error));
    }
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ ...expected, phase: "mid-stream" });
  });
});
