/**
 * Expected failures carry an exit code and, for the user's own mistakes, a hint that says what to fix.
 * Anything that is not a DeplError is a bug: src/cli/main.ts prints it as such.
 */
export abstract class DeplError extends Error {
  abstract readonly exitCode: 1 | 2;
  constructor(
    message: string,
    readonly hint?: string,
    readonly code: string = 'DEPL_ERROR',
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

/** A command in the contract whose implementation has not landed yet. */
export class NotImplementedError extends OperationError {
  constructor(command: string) {
    super(`'depl ${command}' is not implemented yet`, 'See README.md for what works today.', 'NOT_IMPLEMENTED');
  }
}

export function isDeplError(error: unknown): error is DeplError {
  return error instanceof DeplError;
}
