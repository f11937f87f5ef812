// The fence command (quorum.fence_command): puts a departed node down, the pacemaker/stonith
// way, so the lock service may give its locks to others at once instead of after the fencing delay.
import { spawn } from 'node:child_process';

/** Runs `command NODE_ID` through sh: true when it exits 0 (the node is down). */
export function runFence(command: string, nodeId: number, log: (msg: string, fields: Record<string, unknown>) => void): Promise<boolean> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', `${command} "$1"`, 'afcluster-fence', String(nodeId)], { stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', (e) => { log('fence command could not run', { nodeId, err: e.message }); resolve(false); });
    child.once('exit', (code, signal) => {
      log(code === 0 ? 'fence command: node is down' : 'fence command failed: waiting for the fencing delay instead', { nodeId, code, signal });
      resolve(code === 0);
    });
  });
}
