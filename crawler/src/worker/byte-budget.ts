/**
 * Bytes of image bodies a worker holds at once, across its tasks. A body is read whole (it is sniffed, hashed and
 * stored as one value), and a job may allow large images, so `concurrency` of them at `maxImageBytes` each would
 * be the worker's memory; with a budget, a task that would go over it waits, before reading its body, for others
 * to finish theirs (its socket is not read meanwhile). Waiting tasks are served in order. One reservation is
 * always granted when nothing is held, so an image larger than the whole budget still goes through, alone.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; grant(): void }> = [];

  constructor(readonly maxBytes: number) {}

  /** Bytes held now. */
  get held(): number {
    return this.used;
  }

  /** Waits until `bytes` fit, takes them and returns their release (calling it twice releases once). */
  async take(bytes: number): Promise<() => void> {
    if (this.waiting.length > 0 || !this.fits(bytes)) {
      await new Promise<void>((grant) => this.waiting.push({ bytes, grant }));
    } else {
      this.used += bytes;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
      this.grantWaiting();
    };
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.maxBytes;
  }

  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) {
      const next = this.waiting.shift()!;
      this.used += next.bytes;
      next.grant();
    }
  }
}
