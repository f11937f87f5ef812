// Lint: the usual typescript-eslint rules, plus purity for the protocol cores.
// drivers/ and the codecs must not touch clocks, timers, randomness, sockets or files:
// the host injects them, so the simulator can drive the same code (STYLE.md rule 1).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

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
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': 'error',
      'no-constant-condition': ['error', { checkLoops: false }],
      eqeqeq: ['error', 'always'],
    },
  },
  {
    files: ['drivers/**/*.ts', 'core/**/codec*.ts', 'core/**/*.codec.ts', 'core/driver/**/*.ts'],
    ignores: ['**/*.test.ts'],
    rules: {
      'no-restricted-imports': ['error', { paths: impureModules.map((name) => ({ name, message: 'Pure protocol code does no I/O.' })) }],
      'no-restricted-globals': ['error', ...impureGlobals],
      'no-restricted-properties': ['error', { object: 'Math', property: 'random', message: 'Use the injected rng.' }],
    },
  },
);
