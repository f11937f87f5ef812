// The libraries the bench's afcluster clients can use (pure: options.ts parses --client with it).

/** 'ts': the TypeScript library (sockapi/client.ts, tools/bench/client-worker.ts), the default;
 *  'c': the C library (clients/c, tools/bench/workers/afc-bench-worker.c). */
export const CLIENTS = ['ts', 'c'] as const;
export type ClientKind = (typeof CLIENTS)[number];

/** What the report says the afcluster rows' clients were. */
export function clientHeading(client: ClientKind): string {
  return client === 'c'
    ? "afcluster's clients: the C library (clients/c) in afc-bench-worker, one process per node, keeping its window of 512 sends in flight"
    : "afcluster's clients: the TypeScript library (ClusterSocket) in client-worker.ts, one process per node, keeping its window of 512 sends in flight";
}
