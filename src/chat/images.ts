import { invalidRequest } from "../errors/api-error";

/** Whether a message's content holds an image: an `image_url`, a `file` (an uploaded image) or a `video` frame list. */
export function hasImage(content: unknown): boolean {
  if (!Array.isArray(content)) return false;
  return (content as unknown[]).some((part) => {
    const type = (part as { type?: unknown } | null)?.type;
    return type === "image_url" || type === "file" || type === "video";
  });
}

/**
 * The 400 of a request with an image for a model that takes text only (not in `VISION_MODELS`,
 * `models.ts`), named `model`: the image may be in the history, which the caller cannot change,
 * while the model they can. DashScope would refuse it with `input content must be a string`.
 */
export function cannotSeeImages(model: string): Error {
  return invalidRequest(
    `The model "${model}" cannot read images, and this request has one (in this message or in the history it sends). Use a vision model: Qwen-VL (qwen3-vl-plus, qwen3-vl-flash), Qwen3.5/3.6, QVQ or Qwen-Omni.`,
    "model",
  );
}
