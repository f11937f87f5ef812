// Proves the [access] rules: the exact name decides, else the longest prefix, else the group is open; users by uid and groups by any of the client's groups; the lock service's group is root's and the daemon group's unless a rule names it; and the bridge core applies them to the identity from HELLO: a user outside the allowed group is refused BIND with EACCES (counted), a member that may not send is refused SEND and SEND_PART, one that may not receive gets membership events but no messages, and a reload decides later binds.
import { describe, expect, it } from 'vitest';
import { ERROR_NUMBERS } from '../api/errors.ts';
import { AccessPolicy } from './access.ts';
import { DEFAULT_LOCK_GROUP } from '../../services/lock/lock.ts';
import { LOCK_GROUP } from '../config/schema.ts';
import type { AccessPrincipal, AccessRule } from '../config/types.ts';
import { FakeNode } from '../../test/support/bridge-core.ts';

const user = (id: number): AccessPrincipal => ({ kind: 'user', id });
const group = (id: number): AccessPrincipal => ({ kind: 'group', id });
const anyone: AccessPrincipal = { kind: 'anyone' };
const rule = (name: string, join: AccessPrincipal[], send = join, receive = join): AccessRule => ({ name, join, send, receive });
const DAEMON_GID = 50;

describe('access rules', () => {
  it('the exact name decides, else the longest prefix, else the group is open', () => {
    const p = new AccessPolicy([rule('app.*', [anyone], [user(1000)]), rule('app.secret.*', [group(20)]), rule('app.secret.open', [anyone]), rule('*', [user(7)])], DAEMON_GID);
    const alice = { uid: 1000, groups: [100] }, bob = { uid: 2000, groups: [100, 20] };
    expect(p.decide('app.x', alice)).toMatchObject({ join: true, send: true, receive: true, rule: 'app.*' });
    expect(p.decide('app.x', bob)).toMatchObject({ join: true, send: false, receive: true });
    expect(p.decide('app.secret.y', alice)).toMatchObject({ join: false, rule: 'app.secret.*' });
    expect(p.decide('app.secret.y', bob)).toMatchObject({ join: true, send: true });
    expect(p.decide('app.secret.open', alice).join).toBe(true);
    expect(p.decide('other', alice)).toMatchObject({ join: false, rule: '*' });
    expect(p.decide('other', { uid: 7, groups: [] }).join).toBe(true);
    expect(new AccessPolicy([], DAEMON_GID).decide('anything', alice)).toEqual({ join: true, send: true, receive: true });
  });

  it('protects the lock service\'s group for root and the daemon\'s group unless a rule names it', () => {
    expect(LOCK_GROUP).toBe(DEFAULT_LOCK_GROUP);
    const p = new AccessPolicy([rule('*', [anyone])], DAEMON_GID);
    expect(p.decide(LOCK_GROUP, { uid: 1000, groups: [1000] }).join).toBe(false);
    expect(p.decide(LOCK_GROUP, { uid: 0, groups: [0] }).join).toBe(true);
    expect(p.decide(LOCK_GROUP, { uid: 1000, groups: [1000, DAEMON_GID] }).join).toBe(true);
    p.update([rule(LOCK_GROUP, [group(300)])]);
    expect(p.decide(LOCK_GROUP, { uid: 1000, groups: [300] }).join).toBe(true);
    expect(p.decide(LOCK_GROUP, { uid: 0, groups: [0] }).join).toBe(false); // the rule says who
  });

  it('the bridge refuses BIND of a protected group to a user outside it (EACCES, counted), and applies send and receive', () => {
    const policy = new AccessPolicy([rule('app.*', [anyone], [group(100)], [group(100)])], DAEMON_GID);
    const node = new FakeNode({ access: policy });
    const outsider = node.client('/u1000.sock', 1000, 1000);
    const root = node.client('/root.sock', 0, 0);
    const staff = node.client('/staff.sock', 1001, 1001, [100]);
    for (const c of [outsider, root, staff]) expect(c.hello()).toBe(0);
    const bind = (group: string) => ({ type: 'bind', id: 0, group, selfDelivery: true }) as const;
    expect(outsider.status(bind(LOCK_GROUP))).toBe(ERROR_NUMBERS.EACCES);
    expect(node.stats().accessDenied).toBe(1);
    expect(root.status(bind(LOCK_GROUP))).toBe(0);
    // app.*: anyone joins; only group 100 sends and receives.
    expect(outsider.status(bind('app.x'))).toBe(0);
    expect(staff.status(bind('app.x'))).toBe(0);
    expect(outsider.status({ type: 'send', id: 0, order: 'agreed', data: Uint8Array.of(1) })).toBe(ERROR_NUMBERS.EACCES);
    expect(outsider.status({ type: 'sendPart', id: 0, order: 'agreed', msgId: 1, total: 100_000, offset: 0, data: Uint8Array.of(1) })).toBe(ERROR_NUMBERS.EACCES);
    expect(node.stats()).toMatchObject({ accessDenied: 3, partials: 0 });
    expect(staff.status({ type: 'send', id: 0, order: 'agreed', data: Uint8Array.of(42) })).toBe(0);
    expect(staff.events().filter((e) => e.type === 'message')).toHaveLength(1);
    expect(outsider.events().filter((e) => e.type === 'message')).toHaveLength(0);
    expect(outsider.events().some((e) => e.type === 'membership' && e.members.length === 2)).toBe(true);
    // A reload decides the binds from then on.
    policy.update([rule(LOCK_GROUP, [user(1000)])]);
    expect(outsider.status({ type: 'unbind', id: 0 })).toBe(0);
    expect(outsider.status(bind(LOCK_GROUP))).toBe(0);
    expect(node.stats().accessDenied).toBe(3);
  });
});
