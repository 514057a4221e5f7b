import * as z from "zod";
import { nonPublicHostProblem } from "./public-host";
import { WHEN_VALID } from "./when-valid";

/** DashScope's per-item cap on a base64 data URL, in decoded bytes (`Exceeded limit on max bytes per data-uri item : 10485760`). */
export const MAX_DATA_URI_BYTES = 10 * 1024 * 1024;

const HTTP_URL = /^https?:\/\//i;
// `data:<mime>;base64,` — Qwen-Omni's audio samples send `data:;base64,` with an empty media type.
const DATA_URL_HEADER = /^data:([a-z0-9.+-]+\/[a-z0-9.+-]+)?(?:;[a-z0-9.+-]+=[^;,]*)*;base64,/i;
// Linear-time on multi-megabyte payloads: one character class, no backtracking alternatives.
const BASE64_BODY = /^[A-Za-z0-9+/]+={0,2}$/;

/** Which media type a data URL must declare, e.g. `image/` for image parts. */
export interface MediaUrlOptions {
  /** Required prefix of the data URL's media type (`image/`, `video/`, `audio/`). */
  mediaPrefix: string;
  /** Whether `data:;base64,…` (no media type) is accepted, as DashScope does for audio. */
  allowEmptyMediaType?: boolean;
}

/**
 * Why `url` is not a media reference DashScope accepts, or `null` if it is one: an `http(s)` URL
 * of a public host ({@link nonPublicHostProblem}), or a `data:<mime>;base64,<payload>` URL of at
 * most {@link MAX_DATA_URI_BYTES} decoded bytes.
 * DashScope rejects anything else with "The provided URL does not appear to be valid"
 * (`file://` works only through its own SDKs, which upload the file first).
 */
export function mediaUrlProblem(url: string, options: MediaUrlOptions): string | null {
  if (HTTP_URL.test(url)) {
    const parsed = URL.parse(url);
    return parsed ? nonPublicHostProblem(parsed) : "must be a valid http(s) URL";
  }
  if (!url.startsWith("data:")) return "must be an http(s) URL or a base64 data URL";
  const header = DATA_URL_HEADER.exec(url.slice(0, 256));
  if (!header) return `must be a data URL of the form "data:${options.mediaPrefix}<subtype>;base64,<data>"`;
  const mediaType = header[1]?.toLowerCase();
  if (mediaType === undefined ? !options.allowEmptyMediaType : !mediaType.startsWith(options.mediaPrefix)) {
    return `must be a data URL with a "${options.mediaPrefix}*" media type`;
  }
  const payload = url.slice(header[0].length);
  const padding = payload.endsWith("==") ? 2 : payload.endsWith("=") ? 1 : 0;
  // Size first: an oversized payload is refused without scanning its megabytes.
  const bytes = Math.floor((payload.length * 3) / 4) - padding;
  if (bytes > MAX_DATA_URI_BYTES) return `must not exceed ${MAX_DATA_URI_BYTES} bytes of data`;
  // A base64 length of 4k+1 cannot be produced by any encoder.
  if (!BASE64_BODY.test(payload) || payload.length % 4 === 1)
    return 'must carry valid base64 data after "base64,"';
  return null;
}

/** A string schema accepting what {@link mediaUrlProblem} accepts. */
export function mediaUrlSchema(options: MediaUrlOptions) {
  return z.string().superRefine((url, ctx) => {
    const problem = mediaUrlProblem(url, options);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  }, WHEN_VALID);
}
