/**
 * `superRefine` option: run the refinement only when everything parsed so far is valid.
 * zod runs refinements after non-aborting issues (a number out of range, a failed regex)
 * too, and a refinement written for well-formed data should not see half-valid input.
 */
export const WHEN_VALID = { when: (payload: { issues: readonly unknown[] }) => payload.issues.length === 0 };
