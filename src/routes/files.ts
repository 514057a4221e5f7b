import { Hono } from "hono";
import type { AppEnv } from "../app-env";
import { imageDimensions } from "../chat/image-dimensions";
import { imageMediaType } from "../chat/image-media-type";
import { ApiError, notFound } from "../errors/api-error";
import { readUpload } from "../middleware/upload-body";
import type { FileView } from "../resources/file";
import { createFile, deleteFile, fileFromRow, findFile } from "../store/files";
import { isId } from "../store/ids";
import { fileContentResponse } from "./file-content";

/** The name of a file uploaded without one. */
const DEFAULT_FILENAME = "upload";

/**
 * File routes, mounted at `/v1` behind auth (`../shared/API.md` §2.4): `POST /files` → 201 File,
 * `GET /files/{id}` → File, `GET /files/{id}/content` → the bytes with their media type,
 * `DELETE /files/{id}` → 204. Only the owner sees a file; any other id is 404.
 *
 * The upload reads its own body (`readUpload`), not through `jsonBody`: it is multipart or raw bytes.
 */
export const fileRoutes = new Hono<AppEnv>()
  .post("/files", async (c) => {
    const upload = await readUpload(c.req.raw, c.get("config").maxFileBytes);
    const mediaType = imageMediaType(upload.bytes);
    if (mediaType === null) {
      throw new ApiError(
        415,
        "unsupported_media_type",
        "The file is not an image of a supported kind (JPEG, PNG, WebP, HEIC/HEIF), judged by its content.",
        "file",
      );
    }
    const row = await createFile(c.get("userD1").db, c.env.FILES, c.get("userId"), {
      name: upload.filename ?? DEFAULT_FILENAME,
      mediaType,
      bytes: upload.bytes,
      dimensions: imageDimensions(upload.bytes),
    });
    const file: FileView = fileFromRow(row);
    return c.json(file, 201);
  })
  .get("/files/:id", async (c) => {
    const id = c.req.param("id");
    const row = isId(id) ? await findFile(c.get("userD1").db, c.get("userId"), id) : null;
    if (!row) throw notFound("File");
    const file: FileView = fileFromRow(row);
    return c.json(file);
  })
  .get("/files/:id/content", async (c) => {
    const id = c.req.param("id");
    const row = isId(id) ? await findFile(c.get("userD1").db, c.get("userId"), id) : null;
    if (!row) throw notFound("File");
    // The bytes never change under an id; only the owner may read them.
    return fileContentResponse(c.env.FILES, row, "private, max-age=31536000, immutable");
  })
  .delete("/files/:id", async (c) => {
    const id = c.req.param("id");
    if (!isId(id) || !(await deleteFile(c.get("userD1").db, c.env.FILES, c.get("userId"), id)))
      throw notFound("File");
    return c.body(null, 204);
  });
