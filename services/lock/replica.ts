// The lock table kept by every daemon: a member of the lock group that requests nothing. Lock
// state otherwise lives only in the processes that lock; when they are all on the side of a
// split that is cut off, the other side would start from an empty table and grant at once while
// the cut-off holder still runs. With a replica on every node, the quorate side always holds
// the table: it keeps the cut-off holder's locks until FENCED, and hands that to newcomers.
// When its node's part loses quorum its table stops (ENOLCK): it waits for quorum and joins
// again, as a newcomer, on a fresh socket.
import { ClusterError } from '../../core/api/errors.ts';
import type { GroupSocket } from '../../core/api/types.ts';
import { LockClient, type LockClientOptions } from './lock.ts';

export interface LockReplica {
  /** The current client, while it holds the table (for status and tests). */
  readonly client: () => LockClient | undefined;
  /** Leaves the lock group and stops. */
  stop(): Promise<void>;
}

/** Waits this long after a failure before joining again (quorum is polled meanwhile anyway). */
const REJOIN_DELAY_MS = 200;

export function startLockReplica(
  openSocket: () => GroupSocket | Promise<GroupSocket>,
  opts: Omit<LockClientOptions, 'onFailure'> & { readonly log?: (msg: string, fields?: Record<string, unknown>) => void },
): LockReplica {
  let stopping = false;
  let current: { sock: GroupSocket; client?: LockClient; end: (e: ClusterError) => void } | undefined;
  const abort = new AbortController();
  const loop = (async () => {
    while (!stopping) {
      const sock = await openSocket();
      const failed = new Promise<ClusterError>((resolve) => {
        current = { sock, end: resolve };
        LockClient.open(sock, { ...opts, signal: abort.signal, onFailure: resolve })
          .then((client) => { if (current) current.client = client; }, resolve);
      });
      const e = await failed;
      current = undefined;
      await sock.close().catch(() => undefined);
      if (stopping) return;
      opts.log?.('lock replica stopped; joining again once quorate', { code: e.code, reason: e.message });
      await new Promise((r) => setTimeout(r, REJOIN_DELAY_MS));
    }
  })();
  return {
    client: () => current?.client,
    async stop() {
      stopping = true;
      abort.abort();
      const c = current;
      if (c?.client) await c.client.close();
      c?.end(new ClusterError('ECANCELED', 'the lock replica was stopped'));
      await loop.catch(() => undefined);
    },
  };
}
