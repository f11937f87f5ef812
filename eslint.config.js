// Lint: the usual typescript-eslint rules, plus two project rules.
// 1. Purity: drivers/ and the codecs must not touch clocks, timers, randomness, sockets or files:
//    the host injects them, so the simulator can drive the same code.
// 2. Layers: imports point down. LAYERS says, per folder, which folders its files may import
//    from; the rule resolves every relative import and refuses the rest. Tests may import anything.
import path from 'node:path';
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

const ROOT = import.meta.dirname;

// [folder or file, what it may import]: the first entry that contains a file decides. The data
// flow, from the bottom: api (the user's types and errors) < wire (codec toolkit) < driver (the
// driver contract) < crypto, config, native (the C helper's loader), transport < runtime <
// quorum < groups < af (the bridge).
// Drivers see only the contract; the registry of built-in drivers sits above them; sim drives
// core and drivers; services and the client library sit on core; tools use everything but test/.
const CORE_BASE = ['core/api', 'core/wire', 'core/driver'];
export const LAYERS = [
  ['core/api', ['core/api']],
  ['core/wire', ['core/wire', 'core/api']],
  ['core/driver', ['core/driver', 'core/wire', 'core/api']],
  ['core/crypto', ['core/crypto', ...CORE_BASE]],
  ['core/config', ['core/config', 'core/crypto', ...CORE_BASE]],
  ['core/native', ['core/native', ...CORE_BASE]],
  ['core/transport', ['core/transport', 'core/native', 'core/config', ...CORE_BASE]],
  ['core/runtime', ['core/runtime', 'core/transport', 'core/config', 'core/crypto', ...CORE_BASE]],
  ['core/quorum', ['core/quorum', 'core/config', ...CORE_BASE]],
  ['core/groups', ['core/groups', 'core/quorum', 'core/runtime', 'core/config', ...CORE_BASE]],
  ['core/af', ['core/af', 'core/groups', 'core/quorum', 'core/runtime', 'core/transport', 'core/native', 'core/config', 'core/crypto', ...CORE_BASE]],
  ['drivers/builtin.ts', ['drivers', 'core/driver']],
  ['drivers', ['drivers/$1', ...CORE_BASE]],
  ['sim', ['sim', 'core']],
  ['services', ['services', 'core/api', 'core/wire']],
  ['sockapi', ['sockapi', 'core', 'drivers/builtin.ts']],
  ['tools', ['tools', 'core', 'drivers', 'sim', 'services', 'sockapi']],
  ['examples', ['examples', 'core', 'drivers', 'services', 'sockapi']],
];

const within = (file, dir) => file === dir || file.startsWith(dir + '/');

const layersRule = {
  meta: { type: 'problem', schema: [], messages: { up: '{{file}} may not import {{target}}: imports point down ({{layer}}/ may import {{allowed}}; eslint.config.js LAYERS).' } },
  create(context) {
    const file = path.relative(ROOT, context.filename).split(path.sep).join('/');
    const layer = LAYERS.find(([dir]) => within(file, dir));
    if (!layer || file.endsWith('.test.ts')) return {};
    // drivers/<name>/ may import its own folder: '$1' stands for the file's second path segment.
    const allowed = layer[1].map((a) => a.replace('$1', file.split('/')[1]));
    const check = (node) => {
      const spec = node.source?.type === 'Literal' ? node.source.value : undefined;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = path.relative(ROOT, path.resolve(path.dirname(context.filename), spec)).split(path.sep).join('/');
      if (allowed.some((a) => within(target, a))) return;
      context.report({ node, messageId: 'up', data: { file, target, layer: layer[0], allowed: allowed.join(', ') } });
    };
    return { ImportDeclaration: check, ExportNamedDeclaration: check, ExportAllDeclaration: check, ImportExpression: check };
  },
};

const impureModules = [
  'node:dgram', 'dgram', 'node:fs', 'fs', 'node:fs/promises', 'fs/promises', 'node:net', 'net',
  'node:child_process', 'child_process', 'node:timers', 'timers', 'node:timers/promises',
  'unix-dgram', 'node:crypto', 'crypto', 'node:os', 'os', 'node:worker_threads',
];
const impureGlobals = ['setTimeout', 'setInterval', 'setImmediate', 'clearTimeout', 'clearInterval',
  'clearImmediate', 'Date', 'performance', 'queueMicrotask', 'process'].map((name) => ({
  name, message: 'Pure protocol code: the host injects clock, timers and I/O.',
}));

export default tseslint.config(
  { ignores: ['node_modules/**', 'bench-out/**', 'docs/**', 'dist/**', 'dist.tmp-*/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { console: 'readonly', process: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', URL: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly', AbortController: 'readonly', AbortSignal: 'readonly', performance: 'readonly', queueMicrotask: 'readonly', structuredClone: 'readonly' } },
    plugins: { afcluster: { rules: { layers: layersRule } } },
    rules: {
      'afcluster/layers': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    // The state machines the simulator drives whole: drivers, codecs, the driver contract, quorum,
    // the group layer and the bridge's core (its shell, core/af/bridge.ts, does the I/O).
    files: ['drivers/**/*.ts', 'core/**/codec*.ts', 'core/**/*.codec.ts', 'core/driver/**/*.ts', 'core/wire/**/*.ts', 'core/quorum/**/*.ts',
      'core/groups/service.ts', 'core/groups/table.ts', 'core/af/server.ts', 'core/af/outbox.ts', 'core/af/access.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: impureModules.map((name) => ({ name, message: 'Pure protocol code does no I/O.' })) }],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Use the injected rng.' }],
    },
  },
);
