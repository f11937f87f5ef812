// Proves GroupState.find (the per-message membership check) agrees with the member set through
// adds and removes, including the per-node shortcut it keeps.
import { describe, expect, it } from 'vitest';
import { GroupState } from './table.ts';

describe('GroupState.find', () => {
  it('finds exactly the current members, before and after the shortcut is warm, and forgets removed ones', () => {
    const g = new GroupState('g');
    const a = { nodeId: 1, pid: 10, port: 1 };
    const b = { nodeId: 1, pid: 10, port: 2 };
    g.add(a);
    expect(g.find(1, 10, 1)).toBe(a);
    expect(g.find(1, 10, 1)).toBe(a); // from the shortcut
    expect(g.find(1, 10, 2)).toBeUndefined();
    g.add(b);
    expect(g.find(1, 10, 2)).toBe(b);
    expect(g.find(1, 10, 1)).toBe(a);
    g.remove({ ...a });
    expect(g.find(1, 10, 1)).toBeUndefined();
    expect(g.find(1, 10, 2)).toBe(b);
    g.remove(b);
    expect(g.find(1, 10, 2)).toBeUndefined();
    expect(g.find(2, 10, 2)).toBeUndefined();
    g.add(a);
    expect(g.find(1, 10, 1)).toBe(a);
  });
});
