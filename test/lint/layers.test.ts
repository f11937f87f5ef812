// Proves the lint rules that keep the layers: in every protected folder, an import that points up
// (or into test/) is an error, and an import that points down is not. `npm run lint` runs the
// same rules on the tree, so a wrong import cannot land.
import { ESLint } from 'eslint';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const eslint = new ESLint({ cwd: ROOT });

/** [a file in the folder, an import that must be refused, an import that must pass] */
const CASES: [string, string, string][] = [
  ['core/api/x.ts', '../driver/types.ts', './errors.ts'],
  ['core/wire/x.ts', '../groups/codec.ts', '../api/errors.ts'],
  ['core/driver/x.ts', '../runtime/runtime.ts', '../wire/reader.ts'],
  ['core/groups/x.ts', '../af/codec.ts', '../driver/types.ts'],
  ['core/af/x.ts', '../../sockapi/client.ts', '../groups/service.ts'],
  ['core/native/x.ts', '../transport/udp.ts', '../wire/bytes.ts'],
  ['core/transport/x.ts', '../af/unix.ts', '../native/index.ts'],
  ['core/runtime/x.ts', '../../drivers/builtin.ts', '../transport/udp.ts'],
  ['drivers/totem/x.ts', '../cman/codec.ts', './codec.ts'],
  ['drivers/cman/x.ts', '../../core/groups/service.ts', '../../core/driver/packing.ts'],
  ['sim/x.ts', '../tools/cmd-sim.ts', '../core/driver/types.ts'],
  ['services/lock/x.ts', '../../sockapi/client.ts', '../../core/api/types.ts'],
  ['sockapi/x.ts', '../tools/main.ts', '../core/api/types.ts'],
  ['tools/x.ts', '../test/support/groups.ts', '../sim/sim.ts'],
];

async function layerErrors(file: string, spec: string): Promise<string[]> {
  const [result] = await eslint.lintText(`import * as m from '${spec}';\nexport const used = m;\n`, { filePath: join(ROOT, file) });
  return result.messages.filter((m) => m.ruleId === 'afcluster/layers').map((m) => m.message);
}

describe('lint: imports point down', () => {
  for (const [file, bad, good] of CASES) {
    it(`${file}: refuses ${bad}, allows ${good}`, async () => {
      const errors = await layerErrors(file, bad);
      expect(errors).toHaveLength(1);
      expect(errors[0]).toContain('imports point down');
      expect(await layerErrors(file, good)).toEqual([]);
    });
  }

  it('tests may import anything', async () => {
    expect(await layerErrors('core/af/x.test.ts', '../../test/support/groups.ts')).toEqual([]);
  });
});
