/**
 * Concurrency slots as leases: a slot is held until released or until its lease runs out, so a
 * process that dies mid-call gives its slots back after `callLeaseMs` instead of keeping them forever.
 * Leases are not renewed, so `callLeaseMs` must outlast the longest call: a call that runs past its
 * lease stops counting and lets one more call in.
 */
export interface Lease {
  /** Gives the slot back. Idempotent. */
  release(): Promise<void>;
}

export interface LeaseSets {
  /** A lease in `set`, or undefined when `limit` leases there are live. */
  acquire(set: string, limit: number): Promise<Lease | undefined>;
}

/** Releases once, whatever the number of calls. */
export function onceOnly(release: () => Promise<void>): Lease {
  let released = false;
  return {
    release() {
      if (released) return Promise.resolve();
      released = true;
      return release();
    },
  };
}
