// Proves eagain(): a ClusterError EAGAIN with its message and no stack frames, and the process's
// stack trace limit left as it was.
import { describe, expect, it } from 'vitest';
import { ClusterError, eagain, isClusterError } from './errors.ts';

describe('eagain', () => {
  it('is an EAGAIN ClusterError without stack frames and leaves Error.stackTraceLimit alone', () => {
    const before = Error.stackTraceLimit;
    const e = eagain('queue full');
    expect(e).toBeInstanceOf(ClusterError);
    expect(isClusterError(e, 'EAGAIN')).toBe(true);
    expect(e.message).toBe('EAGAIN: queue full');
    expect(e.stack?.split('\n').filter((l) => l.trim().startsWith('at '))).toEqual([]);
    expect(Error.stackTraceLimit).toBe(before);
    expect(new ClusterError('EINVAL', 'x').stack).toMatch(/\n\s+at /);
  });
});
