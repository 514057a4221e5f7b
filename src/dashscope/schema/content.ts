import * as z from "zod";
import { mediaUrlSchema } from "./media-url";

/** Fewest / most frames of a `video` part (Qwen3.5-Omni accepts 2–2048; smaller models enforce tighter ranges upstream). */
export const MIN_VIDEO_FRAMES = 2;
export const MAX_VIDEO_FRAMES = 2048;

/**
 * Most parts in one message's content. DashScope documents no cap; 500 is OpenAI's documented
 * limit of image inputs per request, the nearest published number.
 */
export const MAX_CONTENT_PARTS = 500;
/** Largest `fps` of a `video_url` part: Qwen-VL's video guide gives the range (0.1, 10), default 2.0. */
export const MAX_VIDEO_FPS = 10;

/** Input audio containers Qwen-Omni documents for `input_audio.format`. */
export const INPUT_AUDIO_FORMATS = ["wav", "mp3", "aac", "amr", "3gp", "3gpp"] as const;

/** Explicit context-cache marker; `ephemeral` (5 min TTL, reset on hit) is the only kind. */
export const cacheControlSchema = z.strictObject({ type: z.literal("ephemeral") });

const imageUrl = mediaUrlSchema({ mediaPrefix: "image/" });

export const textPartSchema = z.strictObject({
  type: z.literal("text"),
  text: z.string(),
  cache_control: cacheControlSchema.optional(),
});

export const imageUrlPartSchema = z.strictObject({
  type: z.literal("image_url"),
  image_url: z.strictObject({
    url: imageUrl,
    detail: z.enum(["auto", "low", "high"]).optional(),
  }),
  cache_control: cacheControlSchema.optional(),
});

export const inputAudioPartSchema = z.strictObject({
  type: z.literal("input_audio"),
  input_audio: z.strictObject({
    data: mediaUrlSchema({ mediaPrefix: "audio/", allowEmptyMediaType: true }),
    format: z.enum(INPUT_AUDIO_FORMATS),
  }),
  cache_control: cacheControlSchema.optional(),
});

/** A video given as its frames, each an image URL. */
export const videoFramesPartSchema = z.strictObject({
  type: z.literal("video"),
  video: z.array(imageUrl).min(MIN_VIDEO_FRAMES).max(MAX_VIDEO_FRAMES),
  cache_control: cacheControlSchema.optional(),
});

export const videoUrlPartSchema = z.strictObject({
  type: z.literal("video_url"),
  video_url: z.strictObject({
    url: mediaUrlSchema({ mediaPrefix: "video/" }),
    /** Frames sampled per second of video (Qwen-VL). */
    fps: z.number().positive().max(MAX_VIDEO_FPS).optional(),
  }),
  cache_control: cacheControlSchema.optional(),
});

/** Any part of a user message's content array. */
export const contentPartSchema = z.discriminatedUnion("type", [
  textPartSchema,
  imageUrlPartSchema,
  inputAudioPartSchema,
  videoFramesPartSchema,
  videoUrlPartSchema,
]);

/** A user message's content: a string, or a non-empty array of parts. */
export const messageContentSchema = z.union(
  [z.string(), z.array(contentPartSchema).min(1).max(MAX_CONTENT_PARTS)],
  {
    error: "must be a string or a non-empty array of content parts",
  },
);

/** Content that may only be text (system, assistant and tool messages): a string or text parts. */
export const textContentSchema = z.union(
  [z.string(), z.array(textPartSchema).min(1).max(MAX_CONTENT_PARTS)],
  {
    error: "must be a string or a non-empty array of text parts",
  },
);

export type TextPart = z.infer<typeof textPartSchema>;
