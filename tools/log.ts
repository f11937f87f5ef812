// The daemon's logger: pino, one JSON object per line (for journald, files and log shippers), or
// one readable line per entry on a terminal ("auto") or on request ("pretty"):
//   17:55:12.123 INFO  [bridge] daemon ready socket=/run/afcluster/afcluster.sock driver=totem
// Every line names the node once (pino's base field `node`; no call site repeats it).
import { writeSync } from 'node:fs';
import { pino, type Level, type Logger } from 'pino';

export type LogFormat = 'auto' | 'json' | 'pretty';

const LABELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };

function pad(n: number, w = 2): string {
  return String(n).padStart(w, '0');
}

function show(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** One pino JSON line as a readable line: time, level, [layer], message, the other fields as key=value. */
export function prettyLine(json: string): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json.endsWith('\n') ? json : `${json}\n`;
  }
  const { time, level, msg, layer, pid: _pid, hostname: _host, node, ...rest } = rec;
  const t = new Date(typeof time === 'number' ? time : Date.now());
  const clock = `${pad(t.getHours())}:${pad(t.getMinutes())}:${pad(t.getSeconds())}.${pad(t.getMilliseconds(), 3)}`;
  const label = (LABELS[Number(level)] ?? String(level)).padEnd(5);
  const where = [node !== undefined ? `node ${show(node)}` : '', layer !== undefined ? `[${show(layer)}]` : ''].filter(Boolean).join(' ');
  const fields = Object.entries(rest).map(([k, v]) => `${k}=${show(v)}`).join(' ');
  return `${clock} ${label} ${where ? `${where} ` : ''}${typeof msg === 'string' ? msg : ''}${fields ? ` ${fields}` : ''}\n`;
}

/** "pretty" or "json" for a format and the stream's terminal-ness. */
export function effectiveFormat(format: LogFormat, isTTY: boolean): 'json' | 'pretty' {
  return format === 'auto' ? (isTTY ? 'pretty' : 'json') : format;
}

/** The daemon's logger on standard output. */
export function createLogger(opts: { level: Level; format: LogFormat; node: number }): Logger {
  const format = effectiveFormat(opts.format, process.stdout.isTTY === true);
  const base = { level: opts.level, base: { node: opts.node } };
  if (format === 'json') return pino(base, pino.destination({ fd: 1, sync: true }));
  return pino(base, { write: (line: string) => { writeSync(1, prettyLine(line)); } });
}
