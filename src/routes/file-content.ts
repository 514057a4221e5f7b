import type { MiddlewareHandler } from "hono";
import type { AppEnv } from "../app-env";
import { verifyFileSignature } from "../chat/file-urls";
import { ApiError, notFound } from "../errors/api-error";
import { findLiveFileOnShards } from "../store/file-lookup";
import { type FileRow, fileObjectKey } from "../store/files";
import { isId } from "../store/ids";
import { allShards } from "../store/shards";

/** The bytes of a file as `GET /v1/files/{id}/content` serves them; 404 when the object is gone. */
export async function fileContentResponse(
  bucket: R2Bucket,
  row: FileRow,
  cacheControl: string,
): Promise<Response> {
  const object = await bucket.get(fileObjectKey(row.id));
  // Deleted between the two reads.
  if (!object) throw notFound("File");
  return new Response(object.body, {
    headers: {
      "content-type": row.media_type,
      "content-length": String(object.size),
      etag: object.httpEtag,
      "cache-control": cacheControl,
      // An image is shown, never sniffed into something else.
      "x-content-type-options": "nosniff",
    },
  });
}

/**
 * `GET /v1/files/{id}/content?expires=…&signature=…`: a signed URL (`chat/file-urls.ts`) is its own
 * authority, so this runs before the bearer check and serves the file to whoever holds the URL
 * (DashScope fetching an image) until it expires; 403 `forbidden` for a bad or expired signature.
 * A request without `signature`, or a deployment without `FILE_URL_BASE`/`FILE_URL_SECRET`, goes
 * on to the bearer check and the owner's route.
 */
export const signedFileContent: MiddlewareHandler<AppEnv> = async (c, next) => {
  const signature = c.req.query("signature");
  const urls = c.get("config").fileUrls;
  if (signature === undefined || urls === null) return next();
  const id = c.req.param("id") ?? "";
  const valid =
    isId(id) &&
    (await verifyFileSignature(urls.secret, id, c.req.query("expires") ?? "", signature, Date.now()));
  if (!valid) throw new ApiError(403, "forbidden", "The signed file URL is invalid or has expired.");
  // The URL names the file, not its owner: every shard is asked at once (store/SCHEMA.md "Shards").
  const row = await findLiveFileOnShards(allShards(c.env), id);
  if (!row) throw notFound("File");
  // Any cache may keep it only as long as the URL works.
  return fileContentResponse(c.env.FILES, row, `private, max-age=${urls.ttlSeconds}`);
};
