// The lock service's client: cluster-wide shared/exclusive locks over any GroupSocket.
// Each request is multicast once; every member's LockTable applies it in delivery order, so the
// caller's promise resolves when its own request is granted in that order: no extra round trip,
// no lock server. Needs agreed (or safe) order for every member to agree; with order 'fifo'
// (cman) the same code runs and members may disagree, which the drill measures.
//
// Partitions (docs/LOCKS.md): a table stops the moment its node's part loses quorum (onFailure
// with ENOLCK: the owner must stop using its locks at once). The quorate part keeps the holds of
// members cut off with their node until they are fenced: the lowest member multicasts FENCED
// once `fenceDelayMs` has passed since it saw them go (long enough for the cut-off side to have
// noticed and stopped its holders), or at once when the `fence` hook (a fence command) says the
// node is down.
import { ClusterError, ERROR_NUMBERS, type ErrorCode } from '../../core/api/errors.ts';
import { encodeRequest, lockNameBytes, type LockMode } from './codec.ts';
import { LockTable, memberKey, refusedError, type LockDecision, type LockTableOptions, type TableOutput } from './table.ts';
import type { ChangeReason, GroupSocket, Member, Order, QuorumState, SocketEvent } from '../../core/api/types.ts';
import { encodeFenced } from './codec.ts';

export { LockTable, memberKey, type LockDecision, type LockMode, type TableOutput };

export const DEFAULT_LOCK_GROUP = 'afcluster.locks';

export interface LockClientOptions {
  /** Group the lock service runs in (default "afcluster.locks"). Every client of one table binds the same. */
  readonly group?: string;
  /** Order of the requests (default 'agreed'). 'fifo' runs without agreement: members may disagree. */
  readonly order?: Order;
  /** Sees every output of this member's table in delivery order (the drill records them). */
  readonly onOutput?: (out: TableOutput) => void;
  /** Called once if the client stops working (socket closed or removed, table failed): every
   *  lock it held is then lost (the other members release it at the membership event). */
  readonly onFailure?: (e: ClusterError) => void;
  /** Limits of the table (namesMax, entriesMax, bufferMax). */
  readonly limits?: Omit<LockTableOptions, 'self' | 'group'>;
  /** How long after a holder's node was cut off its locks may go to others (fenceDelayMs()). */
  readonly fenceDelayMs?: number;
  /** Puts a departed member's node down (a fence command); resolves true when it is down, so
   *  its locks may go at once. Only the lowest member calls it. */
  readonly fence?: (member: Member, reason: ChangeReason) => Promise<boolean>;
  /** Called (with the state) while open() waits for the node's part to be quorate. */
  readonly onWaitQuorum?: (state: QuorumState) => void;
}

/** How long a holder's command may take to stop after it is told (SIGTERM, then SIGKILL). */
export const HOLDER_KILL_GRACE_MS = 2000;
/** Added to the fencing delay for scheduling and clock-rate slack. */
export const FENCE_MARGIN_MS = 1000;

/**
 * The fencing delay: after this long since a member's departure was delivered here, its side of
 * the split has lost quorum and stopped its holders. The split came before this side saw it; the
 * other side noticed it within about one failure detection (token + consensus for totem), and a
 * round of joins and recovery may take as long again: twice the failure detection covers how much
 * later the other side may see it than this one, then the kill grace, then a second of slack.
 * It assumes the cut-off node and its processes keep running: a frozen process cannot be stopped,
 * only fenced by a fence command.
 */
export function fenceDelayMs(failureDetectionMs: number): number {
  return 2 * failureDetectionMs + HOLDER_KILL_GRACE_MS + FENCE_MARGIN_MS;
}

/** Used when neither the caller nor the daemon says how fast failures are detected. */
export const DEFAULT_FENCE_DELAY_MS = fenceDelayMs(10_000);
/** How often open() asks the daemon for quorum while it waits. */
const QUORUM_POLL_MS = 250;

export interface LockGrant {
  readonly name: string;
  readonly mode: LockMode;
  readonly requestId: number;
}

interface Pending {
  readonly name: string;
  readonly mode: LockMode;
  readonly resolve: (g: LockGrant | null) => void;
  readonly reject: (e: Error) => void;
}

/** Most requests of this client in flight at once (locks waited for + unlocks not yet applied). */
const PENDING_MAX = 4096;

export class LockClient {
  readonly table: LockTable;
  private readonly order: Order;
  private readonly onOutput: ((out: TableOutput) => void) | undefined;
  private readonly onFailure: ((e: ClusterError) => void) | undefined;
  private readonly group: string;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly unlocking = new Map<number, () => void>();
  private readonly held = new Map<number, LockGrant>();
  private failure: ClusterError | undefined;
  private syncedWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private stopped = false;
  private sendChain: Promise<void> = Promise.resolve();
  private readonly fenceDelay: number;
  /** Departed members whose holds wait for FENCED: when this member may send it. */
  private readonly fenceDue = new Map<string, { readonly member: Member; readonly reason: ChangeReason; readonly at: number }>();
  private readonly fenceSent = new Set<string>();
  private fenceTimer?: NodeJS.Timeout;

  constructor(private readonly sock: GroupSocket, opts: LockClientOptions = {}) {
    this.group = opts.group ?? DEFAULT_LOCK_GROUP;
    this.order = opts.order ?? 'agreed';
    this.onOutput = opts.onOutput;
    this.onFailure = opts.onFailure;
    this.table = new LockTable({ self: sock.self, group: this.group, ...opts.limits });
    this.fenceDelay = opts.fenceDelayMs ?? DEFAULT_FENCE_DELAY_MS;
    this.fenceHook = opts.fence;
  }

  private readonly fenceHook: LockClientOptions['fence'];

  /** Waits until the node's part of the cluster is quorate (a daemon older than protocol
   *  version 3 knows no quorum: then at once), binds the socket to the lock group, starts reading
   *  it, and resolves once this member holds the table. */
  static async open(sock: GroupSocket, opts: LockClientOptions & { signal?: AbortSignal } = {}): Promise<LockClient> {
    const client = new LockClient(sock, opts);
    await waitQuorate(sock, opts.onWaitQuorum, opts.signal);
    await sock.bind(client.group, { signal: opts.signal });
    void client.run();
    await client.synced(opts.signal);
    return client;
  }

  /** Locks this client holds now, as this member's table decided. */
  holding(): LockGrant[] {
    return [...this.held.values()];
  }

  /** Waits until `name` is granted to this member in `mode` (default exclusive). */
  lock(name: string, mode: LockMode = 'exclusive', opts: { signal?: AbortSignal } = {}): Promise<LockGrant> {
    return this.request('lock', name, mode, opts.signal) as Promise<LockGrant>;
  }

  /** Grants `name` if it is free in delivery order, else resolves null. Never waits in the queue. */
  trylock(name: string, mode: LockMode = 'exclusive', opts: { signal?: AbortSignal } = {}): Promise<LockGrant | null> {
    return this.request('trylock', name, mode, opts.signal);
  }

  /** Releases a grant (or the only grant held on a name); resolves once the release is applied. */
  async unlock(grant: LockGrant | string): Promise<void> {
    const g = typeof grant === 'string' ? this.onlyGrant(grant) : grant;
    if (!this.held.has(g.requestId)) throw new ClusterError('EINVAL', `lock "${g.name}" (request ${g.requestId}) is not held by this client`);
    if (this.unlocking.has(g.requestId)) throw new ClusterError('EINVAL', `lock "${g.name}" is already being unlocked`);
    const done = new Promise<void>((resolve) => this.unlocking.set(g.requestId, resolve));
    await this.send(encodeRequest({ op: 'unlock', name: g.name, mode: g.mode, requestId: g.requestId }));
    await done;
  }

  /** Stops: rejects what waits, unbinds (other members then release this member's locks). */
  async close(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.fenceTimer);
    this.failAll(new ClusterError('ECANCELED', 'the lock client was closed'));
    await this.sock.unbind().catch(() => undefined);
  }

  private onlyGrant(name: string): LockGrant {
    const grants = [...this.held.values()].filter((g) => g.name === name);
    if (grants.length !== 1) throw new ClusterError('EINVAL', `this client holds "${name}" ${grants.length} times; pass the grant lock() returned`);
    return grants[0];
  }

  private synced(signal?: AbortSignal): Promise<void> {
    if (this.table.status === 'synced') return Promise.resolve();
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<void>((resolve, reject) => {
      const w = { resolve, reject };
      this.syncedWaiters.push(w);
      signal?.addEventListener('abort', () => {
        this.syncedWaiters = this.syncedWaiters.filter((x) => x !== w);
        reject(new ClusterError('ECANCELED', 'gave up waiting for the lock table'));
      }, { once: true });
    });
  }

  private async request(op: 'lock' | 'trylock', name: string, mode: LockMode, signal?: AbortSignal): Promise<LockGrant | null> {
    lockNameBytes(name);
    if (this.failure) throw this.failure;
    if (this.pending.size >= PENDING_MAX) throw new ClusterError('EAGAIN', `${PENDING_MAX} lock requests are already waiting in this client; wait for some first`);
    signal?.throwIfAborted();
    const requestId = this.nextId;
    this.nextId = this.nextId >= 0xffffffff ? 1 : this.nextId + 1;
    const result = new Promise<LockGrant | null>((resolve, reject) => this.pending.set(requestId, { name, mode, resolve, reject }));
    result.catch(() => undefined); // rejections are seen by the await below, even if they come first
    const onAbort = (): void => this.abandon(requestId, name, mode);
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await this.send(encodeRequest({ op, name, mode, requestId })).catch((e: unknown) => {
        this.pending.delete(requestId);
        throw e;
      });
      return await result;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** The caller gave up: an unlock for the request follows it in delivery order, so it is
   *  cancelled if still waiting, or released right after if granted meanwhile. */
  private abandon(requestId: number, name: string, mode: LockMode): void {
    const p = this.pending.get(requestId);
    if (!p) return;
    this.pending.delete(requestId);
    p.reject(new ClusterError('ECANCELED', `gave up waiting for lock "${name}"`));
    this.send(encodeRequest({ op: 'unlock', name, mode, requestId })).catch(() => undefined);
  }

  /** Sends go out one at a time, in the order issued: a socket that retries on EAGAIN must not
   *  let an unlock overtake the request it cancels. */
  private send(data: Uint8Array): Promise<void> {
    const p = this.sendChain.then(() => this.sendNow(data));
    this.sendChain = p.catch(() => undefined);
    return p;
  }

  private async sendNow(data: Uint8Array): Promise<void> {
    try {
      await this.sock.send(data, { order: this.order });
    } catch (e) {
      const err = e as { code?: string };
      if (err.code === 'EOPNOTSUPP') {
        throw new ClusterError('EOPNOTSUPP', `the driver cannot give ${this.order} order, which locks need for every node to agree; use order 'fifo' to run anyway (nodes may then disagree)`);
      }
      throw e;
    }
  }

  private async run(): Promise<void> {
    try {
      for await (const ev of this.sock) {
        if (this.stopped) return;
        this.onEvent(ev);
      }
      this.failAll(new ClusterError('ENOTCONN', 'the cluster socket closed'));
    } catch (e) {
      this.failAll(e instanceof ClusterError ? e : new ClusterError('ENOTCONN', `the cluster socket failed: ${(e as Error).message}`));
    }
  }

  private onEvent(ev: SocketEvent): void {
    if (ev.type === 'error') {
      const code = Object.hasOwn(ERROR_NUMBERS, ev.code) ? ev.code as ErrorCode : 'ENOTCONN';
      this.failAll(new ClusterError(code, `${ev.message}; this member left the lock group and lost its locks`));
      return;
    }
    for (const out of this.table.apply(ev)) {
      this.onOutput?.(out);
      this.handle(out);
    }
    // A membership change may make this member the lowest: fences already due are its to send.
    if (ev.type === 'membership' && this.fenceDue.size > 0) this.checkFences();
  }

  /** Sends FENCED for the departed members whose delay has passed, if this member is the lowest;
   *  forgets the ones the table no longer waits for; re-arms for the next one due. */
  private checkFences(): void {
    clearTimeout(this.fenceTimer);
    this.fenceTimer = undefined;
    if (this.stopped || this.failure) return;
    const waiting = new Set(this.table.fencingMembers().map((f) => memberKey(f.member)));
    const now = performance.now();
    let next = Infinity;
    for (const [k, f] of this.fenceDue) {
      if (!waiting.has(k)) { this.fenceDue.delete(k); this.fenceSent.delete(k); continue; }
      if (f.at > now) { next = Math.min(next, f.at); continue; }
      if (this.fenceSent.has(k) || !this.table.isDonor()) continue;
      this.fenceSent.add(k);
      this.send(encodeFenced(f.member)).catch(() => this.fenceSent.delete(k));
    }
    if (next < Infinity) {
      this.fenceTimer = setTimeout(() => this.checkFences(), next - now);
      this.fenceTimer.unref?.();
    }
  }

  /** A departed member's holds wait for FENCED: after the delay, or when the fence hook says its
   *  node is down (the lowest member asks it). */
  private fencing(member: Member, reason: ChangeReason): void {
    const k = memberKey(member);
    if (!this.fenceDue.has(k)) this.fenceDue.set(k, { member, reason, at: performance.now() + this.fenceDelay });
    if (this.fenceHook && reason === 'nodedown' && this.table.isDonor()) {
      this.fenceHook(member, reason).then((down) => {
        if (!down || !this.fenceDue.has(k)) return;
        this.fenceDue.set(k, { member, reason, at: 0 });
        this.checkFences();
      }, () => undefined);
    }
    this.checkFences();
  }

  private handle(out: TableOutput): void {
    switch (out.type) {
      case 'send':
        this.send(out.data).catch((e: Error) => this.failAll(e instanceof ClusterError ? e : new ClusterError('ENOTCONN', e.message)));
        return;
      case 'synced':
        for (const w of this.syncedWaiters.splice(0)) w.resolve();
        return;
      case 'failed':
        this.failAll(new ClusterError(out.code, out.message));
        return;
      case 'fence':
        this.fencing(out.member, out.reason);
        return;
      default:
        if (memberKey(out.owner) === memberKey(this.sock.self)) this.ownDecision(out);
    }
  }

  private ownDecision(d: LockDecision): void {
    const p = this.pending.get(d.requestId);
    switch (d.type) {
      case 'grant': {
        if (!p) return; // abandoned: the unlock that follows it releases it
        const g = { name: d.name, mode: d.mode, requestId: d.requestId };
        this.held.set(d.requestId, g);
        this.pending.delete(d.requestId);
        p.resolve(g);
        return;
      }
      case 'tryfail':
        this.pending.delete(d.requestId);
        p?.resolve(null);
        return;
      case 'refused':
        this.pending.delete(d.requestId);
        p?.reject(refusedError(d.name));
        return;
      case 'release':
      case 'cancel':
        this.held.delete(d.requestId);
        this.unlocking.get(d.requestId)?.();
        this.unlocking.delete(d.requestId);
        return;
    }
  }

  private failAll(e: ClusterError): void {
    if (this.failure) return;
    this.failure = e;
    clearTimeout(this.fenceTimer);
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    for (const w of this.syncedWaiters.splice(0)) w.reject(e);
    for (const done of this.unlocking.values()) done();
    this.unlocking.clear();
    this.held.clear();
    if (!this.stopped) this.onFailure?.(e);
  }
}

/** Resolves once the node's part of the cluster is quorate (at once for daemons without quorum). */
async function waitQuorate(sock: GroupSocket, onWait: ((s: QuorumState) => void) | undefined, signal?: AbortSignal): Promise<void> {
  for (let told = false; ; told = true) {
    let state: QuorumState;
    try {
      state = (await sock.quorum({ signal })).state;
    } catch (e) {
      if ((e as { code?: string }).code === 'EOPNOTSUPP') return;
      throw e;
    }
    if (state.quorate) return;
    if (!told) onWait?.(state);
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(resolve, QUORUM_POLL_MS);
      signal?.addEventListener('abort', () => { clearTimeout(t); reject(new ClusterError('ECANCELED', 'gave up waiting for quorum')); }, { once: true });
    });
  }
}
