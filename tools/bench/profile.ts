// Summarizes a V8 .cpuprofile (node --cpu-prof) into self time per function and per file
// (pure, apart from reading the file), so docs/BENCH.md can say where a daemon's CPU went.
import { readFileSync } from 'node:fs';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

export interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  timeDeltas?: number[];
  startTime: number;
  endTime: number;
}

export interface ProfileEntry {
  readonly name: string;
  readonly selfMs: number;
  readonly share: number;
}

export interface ProfileSummary {
  readonly totalMs: number;
  /** Share of samples spent outside JavaScript waiting (the '(idle)' node). */
  readonly idleShare: number;
  readonly functions: ProfileEntry[];
  readonly files: ProfileEntry[];
}

/** Shortens a file URL to its path inside the project (or node:internal/...). */
export function shortUrl(url: string): string {
  if (url === '') return '(native)';
  const i = url.indexOf('/work/main/');
  if (i >= 0) return url.slice(i + '/work/main/'.length);
  const nm = url.lastIndexOf('node_modules/');
  if (nm >= 0) return url.slice(nm);
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(p: CpuProfile, top = 15): ProfileSummary {
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = p.samples ?? [];
  const deltas = p.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) {
    // timeDeltas[i] is the time before sample i; attribute the gap after it to sample i.
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
  }
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (!node) continue;
    total += us;
    const f = node.callFrame;
    if (f.functionName === '(idle)') idle += us;
    const where = shortUrl(f.url);
    const fnKey = `${f.functionName || '(anonymous)'} ${where}${f.url ? `:${f.lineNumber + 1}` : ''}`;
    fn.set(fnKey, (fn.get(fnKey) ?? 0) + us);
    const fileKey = f.url ? where : f.functionName;
    file.set(fileKey, (file.get(fileKey) ?? 0) + us);
  }
  const rank = (m: Map<string, number>) => [...m.entries()]
    .sort((a, b) => b[1] - a[1]).slice(0, top)
    .map(([name, us]) => ({ name, selfMs: us / 1000, share: total > 0 ? us / total : 0 }));
  return { totalMs: total / 1000, idleShare: total > 0 ? idle / total : 0, functions: rank(fn), files: rank(file) };
}

export function readProfile(path: string): CpuProfile {
  return JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
}

export function formatProfileSummary(s: ProfileSummary, top = 15): string {
  const lines = [`total ${s.totalMs.toFixed(0)} ms sampled, idle ${(s.idleShare * 100).toFixed(1)}%`, '', 'self time by file:'];
  for (const e of s.files.slice(0, top)) lines.push(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.name}`);
  lines.push('', 'self time by function:');
  for (const e of s.functions.slice(0, top)) lines.push(`  ${(e.share * 100).toFixed(1).padStart(5)}%  ${e.selfMs.toFixed(0).padStart(7)} ms  ${e.name}`);
  return lines.join('\n');
}
