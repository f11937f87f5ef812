// The drill's workload: one worker races for a few lock names until told to stop, recording
// what its table decides and what it holds. Pure of I/O itself: randomness, pauses and the
// stop signal are injected, so the same loop runs over the in-process bus and real daemons.
import { isClusterError } from '../../core/api/errors.ts';
import type { LockClient, LockMode } from '../../services/lock/lock.ts';
import type { DrillRecorder } from './recorder.ts';

export interface WorkloadOptions {
  readonly names: readonly string[];
  readonly rng: () => number;
  /** Aborts waiting and ends the loop. */
  readonly signal: AbortSignal;
  /** Called while a lock is held (a short sleep in real workers, a yield on the bus). */
  readonly hold: () => Promise<void>;
  /** Called between operations. */
  readonly idle?: () => Promise<void>;
  readonly recorder: DrillRecorder;
  /** Share of shared-mode requests (default 0.25) and of trylocks (default 0.25). */
  readonly sharedShare?: number;
  readonly trylockShare?: number;
  /** Stop after this many operations (default unbounded: the signal ends it). */
  readonly opsMax?: number;
}

export interface WorkloadResult {
  readonly ops: number;
  readonly grants: number;
  readonly tryfails: number;
}

export async function runWorkload(client: LockClient, o: WorkloadOptions): Promise<WorkloadResult> {
  let ops = 0;
  let grants = 0;
  let tryfails = 0;
  while (!o.signal.aborted && ops < (o.opsMax ?? Number.MAX_SAFE_INTEGER)) {
    ops++;
    const name = o.names[Math.floor(o.rng() * o.names.length)];
    const mode: LockMode = o.rng() < (o.sharedShare ?? 0.25) ? 'shared' : 'exclusive';
    const tryOnly = o.rng() < (o.trylockShare ?? 0.25);
    let grant;
    try {
      grant = tryOnly ? await client.trylock(name, mode, { signal: o.signal }) : await client.lock(name, mode, { signal: o.signal });
    } catch (e) {
      if (isClusterError(e, 'ECANCELED')) break;
      throw e;
    }
    if (grant === null) {
      tryfails++;
    } else {
      grants++;
      o.recorder.held(grant);
      await o.hold();
      o.recorder.letGo(grant);
      await client.unlock(grant);
    }
    await o.idle?.();
  }
  return { ops, grants, tryfails };
}
