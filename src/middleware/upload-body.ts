import { ApiError, invalidRequest } from "../errors/api-error";
import { MAX_FILENAME_LENGTH } from "../resources/file";
import { readBodyBytes } from "./body-text";

/** An upload as the client sent it: the bytes and the file name it gave, if any. */
export interface Upload {
  bytes: Uint8Array;
  /** The multipart part's file name or the `filename` query parameter; `null` when neither was given. */
  filename: string | null;
}

/**
 * Room for a multipart body's framing beside the file: boundaries, each part's headers (the file
 * name among them) and small fields such as the `purpose` the openai SDK sends. A file within
 * `MAX_FILE_BYTES` and this much framing is read; the file part itself is then held to
 * `MAX_FILE_BYTES` exactly.
 */
const MULTIPART_FRAMING_BYTES = 16_384;

const MULTIPART = /^multipart\/form-data\s*(;|$)/i;

/**
 * Reads the body of `POST /v1/files` within `maxFileBytes`: a `multipart/form-data` body with
 * exactly one file, in the part `file` (what React Native's and the browser's `FormData` and the
 * openai SDK send), or the raw bytes under any other `Content-Type` (the name from `?filename=`).
 * The bytes are counted as they arrive, never trusting `Content-Length` alone.
 *
 * Errors: 413 `payload_too_large` over the limit; 400 `invalid_request` (`param: "file"`) for a
 * form without a file part, with more than one file, or that cannot be parsed; 400 (`param:
 * "filename"`) for a name longer than {@link MAX_FILENAME_LENGTH}.
 *
 * workerd buffers a part before `put` anyway: R2's `put` needs the length up front, which a
 * multipart part does not declare, and 7 MiB is far inside the Worker's 128 MB of memory.
 */
export async function readUpload(request: Request, maxFileBytes: number): Promise<Upload> {
  const contentType = request.headers.get("content-type") ?? "";
  const tooLarge = () =>
    new ApiError(413, "payload_too_large", `The file exceeds the limit of ${maxFileBytes} bytes.`, "file");
  if (!MULTIPART.test(contentType)) {
    const bytes = await readBodyBytes(request, maxFileBytes, tooLarge);
    const filename = new URL(request.url).searchParams.get("filename");
    return { bytes, filename: checkFilename(filename === "" ? null : filename, "filename") };
  }
  const raw = await readBodyBytes(request, maxFileBytes + MULTIPART_FRAMING_BYTES, tooLarge);
  let form: FormData;
  try {
    // workerd's own multipart parser, on the bytes already counted.
    form = await new Response(raw, { headers: { "content-type": contentType } }).formData();
  } catch {
    throw invalidRequest("The multipart/form-data body could not be parsed.", "file");
  }
  const files = [...form.values()].filter((value): value is File => typeof value !== "string");
  const part = form.getAll("file");
  if (files.length > 1 || part.length > 1)
    throw invalidRequest("Send exactly one file per upload, in the part `file`.", "file");
  const file = part[0];
  if (file === undefined || typeof file === "string")
    throw invalidRequest("The form has no file in the part `file`.", "file");
  if (file.size > maxFileBytes) throw tooLarge();
  return {
    bytes: new Uint8Array(await file.arrayBuffer()),
    filename: checkFilename(file.name === "" ? null : file.name, "file"),
  };
}

function checkFilename(name: string | null, param: string): string | null {
  if (name !== null && name.length > MAX_FILENAME_LENGTH)
    throw invalidRequest(`A file name may have at most ${MAX_FILENAME_LENGTH} characters.`, param);
  return name;
}
