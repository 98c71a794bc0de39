import type { ErrorCode } from './error-codes.js';

export type { ErrorCode } from './error-codes.js';

/**
 * Expected failures carry an exit code, a code from src/error-codes.ts that scripts can branch on (`--json`
 * prints it), and, for the user's own mistakes, a hint that says what to fix.
 * Anything that is not a DeplError is a bug: src/cli/main.ts prints it as such.
 */
export abstract class DeplError extends Error {
  abstract readonly exitCode: 1 | 2;
  constructor(
    message: string,
    readonly hint: string | undefined,
    readonly code: ErrorCode,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad input, bad config, bad usage: exit 2, and nothing was changed. */
export class UserError extends DeplError {
  readonly exitCode = 2 as const;
}

/** The operation was valid but failed against the world (SSH, Docker, Heat, a health check): exit 1. */
export class OperationError extends DeplError {
  readonly exitCode = 1 as const;
}

export function isDeplError(error: unknown): error is DeplError {
  return error instanceof DeplError;
}
