// Proves docs/CONFIG.md and docs/METRICS.md cannot go stale: their reference parts, regenerated
// from the schemas and tools/metrics.ts, equal what the files hold; every key of every section
// has a meaning; every key a reload applies exists; and the page's example configuration is a
// valid config for each of its three hosts.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { generatedDocs, CONFIG_DOC } from '../../tools/gen-config-doc.ts';
import { accessRule, CORE_SECTIONS, docOf, nodeEntry } from '../../core/config/schema.ts';
import { objectKeys, schemaAt, unwrap } from '../../core/config/describe.ts';
import { RELOADABLE } from '../../core/config/reload.ts';
import { parseConfig } from '../../core/config/parse.ts';
import { builtinRegistry } from '../../drivers/builtin.ts';

function meaningOf(s: z.ZodType): string | undefined {
  for (let cur = s, i = 0; i < 16; i++) {
    const d = docOf(cur);
    if (d) return d;
    const next = unwrap(cur);
    const inner = (next as unknown as { _zod: { def: { innerType?: z.ZodType } } })._zod.def.innerType;
    if (next === cur && !inner) return undefined;
    cur = next === cur ? inner! : next;
  }
  return undefined;
}

describe('docs/CONFIG.md and docs/METRICS.md', () => {
  it('hold exactly what the generator writes (run `npm run docs:config` after changing a schema or a metric)', () => {
    for (const [file, text, wanted] of generatedDocs()) expect(text, `${file} is stale: run npm run docs:config`).toBe(wanted);
  });

  it('every key of every section, the node entries and each driver section has a meaning', () => {
    const registry = builtinRegistry();
    const sections: [string, z.ZodType][] = [...Object.entries(CORE_SECTIONS), ['cluster.nodes[]', nodeEntry], ['access.group[]', accessRule],
      ...registry.names().map((n): [string, z.ZodType] => [n, registry.get(n).optionsSchema as z.ZodType])];
    const missing: string[] = [];
    for (const [name, schema] of sections) {
      const keys = objectKeys(schema);
      expect(keys.length, name).toBeGreaterThan(0);
      for (const key of keys) if (!meaningOf(schemaAt(schema, [key])!)) missing.push(`${name}.${key}`);
    }
    expect(missing).toEqual([]);
    for (const key of Object.keys(RELOADABLE)) {
      const [section, name] = key.split('.');
      expect(objectKeys(CORE_SECTIONS[section as keyof typeof CORE_SECTIONS]), key).toContain(name);
    }
  });

  it("the three-host example is a valid config on each of its hosts", () => {
    const text = readFileSync(CONFIG_DOC, 'utf8');
    const example = /```toml\n(# \/etc\/afcluster\/afcluster.toml on alpha[\s\S]*?)```/.exec(text)?.[1];
    expect(example).toBeDefined();
    for (const id of [1, 2, 3]) {
      const c = parseConfig(example!.replace(/^id = 1$/m, `id = ${id}`), `/etc/afcluster/afcluster.toml`, builtinRegistry());
      expect(c.node.listen).toEqual({ host: `10.0.0.1${id}`, port: 5405 });
      expect(c.cluster.nodes).toHaveLength(3);
      expect(c.metrics.listen).toEqual({ host: '127.0.0.1', port: 9405 });
    }
  });
});
