/** Files of swagger-ui-dist served under /docs/swagger-ui/. */
export const VIEWER_FILES: string[];
/** Copies the viewer into `<rootDir>/public/docs/swagger-ui/`, leaving identical files alone. */
export function buildDocsAssets(rootDir: string): void;
