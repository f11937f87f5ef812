// The bridge's shell: the daemon's unix datagram socket, one connected socket per client, the
// clock, setImmediate and a once-a-second tick, bound to the pure state machine in server.ts.
// Everything the bridge decides is decided there; this file only moves bytes and time.
import { existsSync, unlinkSync } from 'node:fs';
import { BridgeCore, type BridgeHost, type BridgeOptions, type ClientIdentity } from './server.ts';
import type { ErrorCode } from '../api/errors.ts';
import { fileToken, identifyPeer, pidExists } from './peercred.ts';
import type { ClientChannel } from './outbox.ts';
import { prepareSocketPath, secureSocket, type SocketFileOptions } from './socketfile.ts';
import { bindUnix, connectUnix, createUnixSocket, sendUnix, unixErrorName, type UnixDgramSocket } from './unix.ts';
import { plainBytes } from '../wire/bytes.ts';
import { anchor, drop } from '../wire/lease.ts';

export {
  STATS_GROUPS_MAX, PARTIALS_PER_SOCKET_MAX, PARTIAL_BYTES_MAX, PARTIAL_IDLE_MS, partialLimits,
  type BridgeEndpoint, type BridgeGroups, type BridgeLog, type EndpointSink,
} from './server.ts';

export interface BridgeServerOptions extends BridgeOptions {
  readonly socket: SocketFileOptions;
  /** How often to look for client processes that died without closing (default 1000 ms). */
  readonly procCheckMs?: number;
  /** Test hook: is this pid alive? (default kill(pid, 0)) */
  readonly pidAlive?: (pid: number) => boolean;
  /** Test hook: who is the client at this path? (default: the kernel's word, core/af/peercred.ts) */
  readonly identify?: (path: string, claimedPid: number) => ClientIdentity | ErrorCode;
}

/**
 * The send buffer asked for the daemon's socket to each client. A unix datagram stays charged to
 * its sender's buffer until the client reads it, so this buffer is how much can be on its way to
 * a client while the daemon is busy elsewhere (a token visit, other sockets); the client's queue
 * also holds at most net.unix.max_dgram_qlen + 1 datagrams (10 by default). The host's default of
 * 208 KiB holds three 64 KiB messages, under a millisecond of a fast stream: a client that read
 * as fast as it could then waited for the daemon to come back, fell behind, and was removed from
 * its group (two thirds of the bench's 64 KiB rows with every node sending; docs/BENCH.md,
 * "A client's socket buffer"). 768 KiB holds eleven. Kernel memory, used only while a client has
 * not read what was sent; the kernel gives at most twice net.core.wmem_max.
 */
export const CLIENT_SEND_BUFFER = 768 * 1024;

/** The daemon's socket to one client (not yet connected), its send buffer CLIENT_SEND_BUFFER. */
export function clientSocket(): UnixDgramSocket {
  return createUnixSocket({ sendBufferMin: CLIENT_SEND_BUFFER });
}

/** A unix socket connected to one client: sends are synchronous (unix-dgram calls back at once). */
function unixChannel(sock: UnixDgramSocket, onWritable: () => void, onError: (errno: string) => void): ClientChannel {
  sock.on('writable', onWritable);
  sock.on('error', (e) => onError(unixErrorName(e)));
  return {
    send(bytes) {
      const failure = sendUnix(sock, bytes);
      return failure === undefined ? 'sent' : failure === 'EAGAIN' ? 'again' : failure;
    },
    close() {
      sock.removeAllListeners();
      sock.close();
    },
  };
}

export { pidExists };

export class BridgeServer {
  readonly core: BridgeCore;
  private readonly sock: UnixDgramSocket;
  private readonly timer: NodeJS.Timeout;
  private closed = false;

  constructor(private readonly opts: BridgeServerOptions) {
    prepareSocketPath(opts.socket, (msg) => opts.log('warn', msg));
    const sock = createUnixSocket();
    this.sock = sock;
    const host: BridgeHost = {
      now: () => performance.now(),
      defer: (fn) => { setImmediate(fn); },
      connect: (path, onWritable, large) => {
        const conn = clientSocket();
        if (large && conn.largeDatagrams !== true) { conn.close(); return 'EMSGSIZE'; }
        const err = connectUnix(conn, path);
        if (err) { conn.close(); return err; }
        return unixChannel(conn, onWritable, (errno) => opts.log('debug', 'client socket error', { path, errno }));
      },
      sendTo: (path, bytes, onFailed) => {
        if (sendUnix(sock, bytes, path) !== undefined) onFailed();
      },
      processAlive: opts.pidAlive ?? pidExists,
      largeDatagrams: sock.largeDatagrams === true,
      clientExists: (path, file) => (file === undefined ? existsSync(path) : fileToken(path) === file),
      identify: opts.identify ?? identifyPeer,
    };
    this.core = new BridgeCore(opts, host);
    // A client's datagram goes back once the bridge is done with it and the driver lets go of
    // what it kept (opts.multicastHolds): the datagram is anchored for the call.
    sock.on('message', opts.multicastHolds === true ? (buf, rinfo) => {
      anchor(buf);
      try {
        this.core.datagram(plainBytes(buf), rinfo.path);
      } finally {
        drop(buf);
      }
    } : (buf, rinfo) => this.core.datagram(plainBytes(buf), rinfo.path));
    bindUnix(sock, opts.socket.path);
    sock.on('error', (e) => opts.log('warn', 'bridge socket error', { err: e.message }));
    secureSocket(opts.socket);
    this.timer = setInterval(() => this.core.tick(), opts.procCheckMs ?? 1000);
    this.timer.unref();
  }

  /** Stop: every client socket is closed (its members leave) and the socket file is removed. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.core.close();
    this.sock.removeAllListeners();
    this.sock.close();
    try { unlinkSync(this.opts.socket.path); } catch { /* already gone */ }
  }

  stats(): Record<string, number> { return this.core.stats(); }
  allStats(): ReturnType<BridgeCore['allStats']> { return this.core.allStats(); }
  /** The service may take sends again (GroupService onWritable): wake the sockets that were refused. */
  writable(): void { this.core.writable(); }
}
