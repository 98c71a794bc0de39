import type { Duplex } from 'node:stream';
import type { Argv } from '../plan/shell.js';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Bytes or text written to the command's stdin, then closed. */
  stdin?: string | Buffer | NodeJS.ReadableStream;
  timeoutMs?: number;
  /** When false (default true), a non-zero exit is returned instead of thrown as an OperationError. */
  check?: boolean;
}

/**
 * A machine we run commands on: a node over SSH (src/apply/ssh.ts), or this machine (src/apply/local-remote.ts).
 * Adapters that configure nodes (edge, docker, lock, state) take a Remote, so they run the same against both.
 */
export interface Remote {
  /** A short name for messages: `node-1 (192.168.77.11)`. */
  readonly name: string;
  exec(argv: Argv, options?: ExecOptions): Promise<ExecResult>;
  /** Runs a shell line (pipes, redirects); the caller must have quoted every argument with plan/shell.ts. */
  shell(line: string, options?: ExecOptions): Promise<ExecResult>;
  /** Writes a file by writing a temporary file beside it and renaming it, so readers see old or new, never half. */
  writeFileAtomic(path: string, content: string | Buffer, mode?: number): Promise<void>;
  /** The file's text, or null when it does not exist. */
  readFile(path: string): Promise<string | null>;
  /**
   * Several files' texts (null for each that does not exist) in one round trip, where a round trip costs a
   * command on the node (SSH). Absent: read one by one (src/apply/remote-files.ts readFiles).
   */
  readFiles?(paths: readonly string[]): Promise<Array<string | null>>;
  /**
   * A new stream to the node's Docker Engine API over the connection this remote already has (src/apply/docker.ts
   * engineOn): one SSH connection per node serves commands and the Engine API alike. Absent on this machine,
   * whose engine is at its own socket.
   */
  engineStream?(): Promise<Duplex>;
  close(): Promise<void>;
}
