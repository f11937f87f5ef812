// Turns zod validation failures into the config's error lines:
//   node1.toml: totem.token_ms = -5: expected an integer >= 10
//   node1.toml: totem.tokn_ms: unknown key (known: token_ms, ...)
// The "expected" part is read from the schema at the failing path (its description if it has
// one, else its type and bounds), so driver schemas written by others get the same messages.
import type { z } from 'zod';

type Schema = z.ZodType;
type Path = readonly PropertyKey[];

/** Internal zod 4 definition fields we read; declared loosely because they vary by type. */
interface Def {
  type: string;
  innerType?: Schema;
  in?: Schema;
  out?: Schema;
  shape?: Record<string, Schema>;
  element?: Schema;
  options?: Schema[];
  entries?: Record<string, unknown>;
  values?: unknown[];
  checks?: Array<{ _zod: { def: { check: string; value?: unknown; inclusive?: boolean; minimum?: number; maximum?: number } } }>;
  format?: string;
}

function def(s: Schema): Def {
  return (s as unknown as { _zod: { def: Def } })._zod.def;
}

/** Strips wrappers that do not change what the user writes (default, optional, catch, pipe input). */
export function unwrap(s: Schema): Schema {
  for (let i = 0; i < 16; i++) {
    const d = def(s);
    if ((d.type === 'default' || d.type === 'optional' || d.type === 'nullable' || d.type === 'prefault'
      || d.type === 'catch' || d.type === 'readonly') && d.innerType) s = d.innerType;
    else if (d.type === 'pipe' && d.in) s = d.in;
    else return s;
  }
  return s;
}

/** The schema found by walking `path` through objects and arrays; undefined when it leaves them. */
export function schemaAt(root: Schema, path: Path): Schema | undefined {
  let s: Schema | undefined = root;
  for (const key of path) {
    if (!s) return undefined;
    const u = unwrap(s);
    const d = def(u);
    if (d.type === 'object' && typeof key === 'string') s = d.shape?.[key];
    else if (d.type === 'array' && typeof key === 'number') s = d.element;
    else return undefined;
  }
  return s;
}

export function objectKeys(s: Schema | undefined): string[] {
  if (!s) return [];
  const d = def(unwrap(s));
  return d.type === 'object' && d.shape ? Object.keys(d.shape) : [];
}

const SAFE = Number.MAX_SAFE_INTEGER;

function describeNumber(s: Schema): string {
  const d = def(s);
  const n = s as unknown as { isInt?: boolean };
  let lo = -Infinity;
  let hi = Infinity;
  let loIncl = true;
  let hiIncl = true;
  for (const c of d.checks ?? []) {
    const cd = c._zod.def;
    if (cd.check === 'greater_than' && typeof cd.value === 'number') { lo = cd.value; loIncl = cd.inclusive !== false; }
    if (cd.check === 'less_than' && typeof cd.value === 'number') { hi = cd.value; hiIncl = cd.inclusive !== false; }
  }
  const base = n.isInt || (d.format !== undefined && d.format.includes('int')) ? 'an integer' : 'a number';
  const hasLo = Number.isFinite(lo) && Math.abs(lo) < SAFE;
  const hasHi = Number.isFinite(hi) && Math.abs(hi) < SAFE;
  if (hasLo && hasHi && loIncl && hiIncl) return `${base} from ${lo} to ${hi}`;
  const parts = [base];
  if (hasLo) parts.push(`${loIncl ? '>=' : '>'} ${lo}`);
  if (hasHi) parts.push(`${hasLo ? 'and ' : ''}${hiIncl ? '<=' : '<'} ${hi}`);
  return parts.join(' ');
}

function describeString(s: Schema): string {
  const st = s as unknown as { minLength?: number | null; maxLength?: number | null };
  const min = st.minLength ?? 0;
  const max = st.maxLength ?? null;
  if (max !== null) return `a string of ${min} to ${max} characters`;
  return min > 0 ? `a non-empty string` : 'a string';
}

function describedAs(schema: Schema): string | undefined {
  let s = schema;
  for (let i = 0; i < 16; i++) {
    if (s.description) return s.description;
    const next = unwrap(s);
    if (next === s) return undefined;
    s = next;
  }
  return undefined;
}

/** "an integer >= 10", "one of "udpu", "multicast"", or the schema's own description. */
export function describe(schema: Schema | undefined): string {
  if (!schema) return 'nothing here';
  const own = describedAs(schema);
  if (own) return own;
  const s = unwrap(schema);
  const d = def(s);
  switch (d.type) {
    case 'number': return describeNumber(s);
    case 'string': return describeString(s);
    case 'boolean': return 'true or false';
    case 'enum': return `one of ${Object.values(d.entries ?? {}).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'literal': return (d.values ?? []).map((v) => JSON.stringify(v)).join(' or ');
    case 'object': return `a table with keys ${objectKeys(s).join(', ')}`;
    case 'array': {
      const e = d.element ? unwrap(d.element) : undefined;
      if (e && def(e).type === 'object') return `an array of tables with keys ${objectKeys(e).join(', ')}`;
      return `an array of ${describe(e).replace(/^an? /, '')} values`;
    }
    case 'union': return (d.options ?? []).map((o) => describe(o)).join(', or ');
    default: return d.type;
  }
}

/** Prints a TOML value the way the user wrote it, briefly. */
export function formatValue(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (v instanceof Date) return v.toISOString();
  let text: string;
  try {
    text = JSON.stringify(v) ?? String(v);
  } catch {
    text = String(v);
  }
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** `totem.token_ms`, `cluster.nodes[1].addr`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const k of path) {
    if (typeof k === 'number') out += `[${k}]`;
    else out += out === '' ? String(k) : `.${String(k)}`;
  }
  return out;
}

export function valueAt(root: unknown, path: Path): unknown {
  let v = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k as string];
  }
  return v;
}

/**
 * One error line per issue. `prefix` is the section path the schema was applied at (e.g.
 * ['totem']), `raw` the section's raw value.
 */
export function issueLines(file: string, prefix: Path, schema: Schema, raw: unknown, issues: readonly z.core.$ZodIssue[]): string[] {
  const lines: string[] = [];
  // A cross-key refinement over keys the user did not write is noise while any key is itself
  // wrong (it compares against a rejected value); it is reported once the keys are valid.
  const anyPlain = issues.some((i) => i.code !== 'custom');
  for (const issue of issues) {
    const where = [...prefix, ...issue.path];
    if (issue.code === 'custom' && anyPlain && valueAt(raw, issue.path) === undefined) continue;
    if (issue.code === 'unrecognized_keys') {
      const known = objectKeys(schemaAt(schema, issue.path)).join(', ');
      for (const key of issue.keys) lines.push(`${file}: ${formatPath([...where, key])}: unknown key (known: ${known})`);
      continue;
    }
    const value = valueAt(raw, issue.path);
    const at = schemaAt(schema, issue.path);
    const key = value === undefined ? formatPath(where) : `${formatPath(where)} = ${formatValue(value)}`;
    if (issue.code === 'custom' && !(at && describedAs(at))) {
      // A refinement's own message is a whole sentence (often about several keys): print it as is.
      lines.push(`${file}: ${key}: ${issue.message}`);
      continue;
    }
    const expected = at ? describe(at) : issue.message;
    lines.push(`${file}: ${key}: ${value === undefined ? 'missing: ' : ''}expected ${expected}`);
  }
  return lines;
}
