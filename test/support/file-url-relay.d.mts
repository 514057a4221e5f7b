/** A running relay (see file-url-relay.mjs for its routes). */
export interface FileUrlRelay {
  origin: string;
  close(): Promise<void>;
}

/** Starts the relay on `host:port` (port 0 picks a free one). */
export function startFileUrlRelay(options?: { host?: string; port?: number }): Promise<FileUrlRelay>;
