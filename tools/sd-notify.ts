// systemd's readiness protocol (sd_notify(3)): one datagram such as "READY=1" to the unix socket
// named by NOTIFY_SOCKET, which systemd sets for a Type=notify service. Without NOTIFY_SOCKET
// this does nothing. Only path sockets are supported (systemd's default for system services);
// an abstract one ("@...") is reported, not used.
import { createUnixSocket, unixErrorName } from '../core/af/unix.ts';

/** Sends `state` ("READY=1\nSTATUS=..."); resolves undefined when sent or not asked for, else why not. */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const path = env.NOTIFY_SOCKET;
  if (!path) return Promise.resolve(undefined);
  if (path.startsWith('@')) return Promise.resolve(`NOTIFY_SOCKET ${path} is an abstract socket, which this daemon cannot reach; use a path socket or Type=simple`);
  const sock = createUnixSocket();
  const buf = Buffer.from(state);
  return new Promise((resolve) => {
    let done = false;
    const finish = (why: string | undefined): void => {
      if (done) return;
      done = true;
      sock.close();
      resolve(why);
    };
    sock.on('error', (e) => finish(`cannot notify ${path}: ${unixErrorName(e)}`));
    sock.send(buf, 0, buf.length, path, (err) => finish(err ? `cannot notify ${path}: ${unixErrorName(err)}` : undefined));
  });
}
