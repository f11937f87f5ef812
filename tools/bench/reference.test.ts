// Proves the reference's pure parts: its labels (agreed order), the skipped rows that say why and print as missing figures, the version read from `corosync -v`, and an environment without what the bin sets for afcluster's daemons.
import { describe, expect, it } from 'vitest';
import { DAEMON_ENV } from '../local-cluster.ts';
import { parseCorosyncVersion, referenceEnv } from './corosync.ts';
import { referenceLabels, skippedLatency, skippedThroughput } from './reference.ts';

describe('referenceLabels', () => {
  it('measures corosync in agreed order, with the configuration crypto', () => {
    expect(referenceLabels('corosync', 'on')).toEqual({ driver: 'corosync', crypto: 'on', accelerated: '-', order: 'agreed' });
  });
});

describe('skipped rows', () => {
  const l = referenceLabels('corosync', 'off');
  it('keep the work they stand for and the reason, with no figures', () => {
    const t = skippedThroughput(l, 3, 65536, 'one', 'libcpg-dev is missing');
    expect(t).toMatchObject({ driver: 'corosync', nodes: 3, size: 65536, senders: 'one', skipped: 'libcpg-dev is missing' });
    expect([t.writes, t.tpPerSec, t.mbPerSec]).toEqual([NaN, NaN, NaN]);
    expect(skippedThroughput(l, 3, 100, 'all', 'x').senders).toBeUndefined();
    const lat = skippedLatency(l, 3, { size: 100, seconds: 1, loadPerSec: 500 }, 'failed');
    expect(lat).toMatchObject({ size: 100, load: 500, samples: 0, skipped: 'failed' });
    expect(skippedLatency(l, 3, { size: 100, seconds: 1, loadPerSec: 0 }, 'x').load).toBe('idle');
  });
});

describe('parseCorosyncVersion', () => {
  it('reads the version corosync -v prints', () => {
    expect(parseCorosyncVersion("Corosync Cluster Engine, version '3.1.7'\nCopyright (c) 2006-2021 Red Hat, Inc.\n")).toBe('3.1.7');
    expect(parseCorosyncVersion('something else')).toBeUndefined();
  });
});

describe('referenceEnv', () => {
  it('runs corosync with the C library\'s defaults: without the variables the bin sets for afcluster\'s daemons, the rest kept', () => {
    const env = { ...DAEMON_ENV, PATH: '/usr/bin', HOME: '/root' };
    const out = referenceEnv(env);
    expect(out).toEqual({ PATH: '/usr/bin', HOME: '/root' });
    expect(env).toMatchObject(DAEMON_ENV); // the caller's copy untouched
    expect(Object.keys(DAEMON_ENV)).toContain('MALLOC_ARENA_MAX');
  });
});
