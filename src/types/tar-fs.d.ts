// tar-fs 2 ships no types; only what src/apply/build-context.ts uses.
declare module 'tar-fs' {
  import type { Readable } from 'node:stream';
  interface PackOptions {
    entries?: string[];
    finalize?: boolean;
    finish?: (pack: { entry(header: object, data: Buffer): void; finalize(): void }) => void;
    ignore?: (name: string) => boolean;
    dereference?: boolean;
  }
  export function pack(cwd: string, options?: PackOptions): Readable;
  const tar: { pack: typeof pack };
  export default tar;
}
