// Who may do what with a group on this node: the [access] rules of the config (docs/CONFIG.md),
// applied by the bridge at BIND (join), SEND and SEND_PART (send) and to message events (receive)
// to the identity the kernel gave at HELLO (core/af/peercred.ts). Pure: ids in, decisions out.
//
// For a group, the rule with its exact name decides, else the rule whose prefix ("app.*") is the
// longest that matches, else nothing restricts it. Unless a rule names the lock service's group
// exactly, a built-in rule limits it to root and the daemon's own group: a process that can reach
// the socket must not be able to join the lock table and release other members' locks.
import type { AccessPrincipal, AccessRule } from '../config/types.ts';
import { LOCK_GROUP } from '../config/schema.ts';

/** Who asks: a user and the groups it counts as a member of. */
export interface AccessSubject {
  readonly uid: number;
  readonly groups: readonly number[];
}

export interface AccessDecision {
  readonly join: boolean;
  readonly send: boolean;
  readonly receive: boolean;
  /** The rule that decided (its name), or undefined when none matched (open). */
  readonly rule?: string;
}

const OPEN: AccessDecision = { join: true, send: true, receive: true };

export class AccessPolicy {
  private exact = new Map<string, AccessRule>();
  private prefixes: AccessRule[] = [];

  /** `daemonGid`: the daemon's own group, let into the lock service's group by the built-in rule. */
  constructor(rules: readonly AccessRule[], private readonly daemonGid: number) {
    this.update(rules);
  }

  /** New rules (a reload): they decide the binds from now on. */
  update(rules: readonly AccessRule[]): void {
    const exact = new Map<string, AccessRule>();
    const prefixes: AccessRule[] = [];
    for (const r of rules) {
      if (r.name.endsWith('*')) prefixes.push(r); else exact.set(r.name, r);
    }
    if (!exact.has(LOCK_GROUP)) {
      const trusted: AccessPrincipal[] = [{ kind: 'user', id: 0 }, { kind: 'group', id: this.daemonGid }];
      exact.set(LOCK_GROUP, { name: LOCK_GROUP, join: trusted, send: trusted, receive: trusted });
    }
    prefixes.sort((a, b) => b.name.length - a.name.length);
    this.exact = exact;
    this.prefixes = prefixes;
  }

  /** The rule that decides for `group`, if any. */
  ruleFor(group: string): AccessRule | undefined {
    return this.exact.get(group) ?? this.prefixes.find((r) => group.startsWith(r.name.slice(0, -1)));
  }

  decide(group: string, who: AccessSubject): AccessDecision {
    const rule = this.ruleFor(group);
    if (!rule) return OPEN;
    return { join: allows(rule.join, who), send: allows(rule.send, who), receive: allows(rule.receive, who), rule: rule.name };
  }
}

function allows(list: readonly AccessPrincipal[], who: AccessSubject): boolean {
  return list.some((p) => p.kind === 'anyone' || (p.kind === 'user' ? p.id === who.uid : who.groups.includes(p.id)));
}
