// One process of the bench's C clients (tools/bench/workers: cpg-bench for corosync,
// afc-bench-worker for afcluster's C library), driven with the line protocol of
// tools/bench/cpg-protocol.ts: a command line in, a reply line out, one request at a time.
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { ClientRequest } from './client-protocol.ts';
import { cpgCommand, parseCpgReply, type CpgReply } from './cpg-protocol.ts';

export class LineClient {
  private readonly lines: string[] = [];
  private waiter: ((line: string | undefined) => void) | undefined;
  private gone = false;

  /** `program` names it in errors; `node` is its node (1-based). */
  constructor(readonly program: string, readonly node: number, readonly proc: ChildProcess) {
    createInterface({ input: proc.stdout! }).on('line', (line) => {
      if (this.waiter) this.take(line);
      else this.lines.push(line);
    });
    proc.once('exit', () => {
      this.gone = true;
      this.take(undefined);
    });
    proc.stdin!.on('error', () => { /* it exited; the next ask says so */ });
  }

  private take(line: string | undefined): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.(line);
  }

  ask(req: ClientRequest, timeoutMs: number): Promise<CpgReply> {
    const who = `node ${this.node}'s ${this.program}`;
    if (this.gone) return Promise.reject(new Error(`${who} has exited or stopped answering`));
    if (this.waiter) return Promise.reject(new Error(`bug: a second request to ${who} before its reply`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        // Its reply may still come and would answer the next request: ask it nothing more.
        this.waiter = undefined;
        this.gone = true;
        reject(new Error(`${who} did not answer "${cpgCommand(req)}" within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = (line) => {
        clearTimeout(timer);
        if (line === undefined) reject(new Error(`${who} exited before answering "${cpgCommand(req)}"`));
        else {
          try {
            resolve(parseCpgReply(line));
          } catch (e) {
            reject(e as Error);
          }
        }
      };
      const queued = this.lines.shift();
      if (queued !== undefined) this.take(queued);
      this.proc.stdin!.write(`${cpgCommand(req)}\n`);
    });
  }

  /** ask(), with an error reply thrown as an error that names the client. */
  async expect(req: ClientRequest, timeoutMs: number): Promise<Exclude<CpgReply, { type: 'error' }>> {
    const r = await this.ask(req, timeoutMs);
    if (r.type === 'error') throw new Error(`node ${this.node}'s ${this.program}: ${r.message}`);
    return r;
  }
}
