/**
 * Calls Wooxy is still working on without having answered: a stalled call is held for a while, then carries
 * on (validated, accepted, answered) as if the service had merely been slow — whether or not its client is
 * still waiting. The engine keeps them here so idle() waits for them, and so reset() and close() can abandon
 * them rather than let a call from before a reset land in the fresh state.
 */

export interface Stall {
  /** Resolves true once the stall has elapsed, false when reset() or close() abandoned it. */
  readonly elapsed: Promise<boolean>;
  /** The client gave up (closed the connection) while the call was held. */
  clientGone: boolean;
  /** The call is over (answered, or written off because its client had gone): it no longer keeps the emulator busy. */
  end(): void;
}

export class Stalls {
  readonly #held = new Map<Stall, () => void>();

  /** `onEnd` runs whenever a stall ends, so idle waiters can be told. */
  constructor(private readonly onEnd: () => void) {}

  get size(): number {
    return this.#held.size;
  }

  /** Calls held now, and how many of them their client has already given up on. */
  counts(): { held: number; clientGone: number } {
    let clientGone = 0;
    for (const s of this.#held.keys()) if (s.clientGone) clientGone++;
    return { held: this.#held.size, clientGone };
  }

  /** Holds a call for `ms`; `onAbandon` runs (before `elapsed` resolves false) if the emulator resets or closes first. */
  hold(ms: number, onAbandon: () => void): Stall {
    let settle!: (elapsed: boolean) => void;
    const elapsed = new Promise<boolean>((resolve) => (settle = resolve));
    const timer = setTimeout(() => settle(true), ms);
    const stall: Stall = {
      elapsed,
      clientGone: false,
      end: () => {
        if (this.#held.delete(stall)) this.onEnd();
      },
    };
    this.#held.set(stall, () => {
      clearTimeout(timer);
      onAbandon();
      settle(false);
    });
    return stall;
  }

  abandonAll(): void {
    const abandon = [...this.#held.values()];
    this.#held.clear();
    for (const a of abandon) a();
  }
}
