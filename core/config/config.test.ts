// Proves config files get LAN defaults, and that each class of mistake (syntax, type, range, unknown key or section, unknown driver, driver options, cross-checks) is refused naming file, key, value and expected form.
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { DriverRegistry } from '../driver/registry.ts';
import type { DriverEntry } from '../driver/types.ts';
import { isClusterError } from '../api/errors.ts';
import { loadConfig, parseConfig, planReload, resolveConfig, writeLocalCluster, type Resolver } from './index.ts';

function entry(name: string, schema: z.ZodType): DriverEntry {
  return {
    name, summary: `test ${name}`, optionsSchema: schema,
    guarantees: { fifo: true, agreed: false, safe: false, virtualSynchrony: false },
    create() { throw new Error('not used in config tests'); },
  };
}

const registry = new DriverRegistry();
registry.register(entry('totem', z.strictObject({
  token_ms: z.int().min(10).default(1000),
  consensus_ms: z.int().min(10).max(60_000).default(1200),
  window: z.int().min(1).default(50),
})));
registry.register(entry('cman', z.strictObject({ ack_timeout_ms: z.int().min(1).default(200) })));

const MINIMAL = `
[node]
id = 1
[cluster]
nodes = [ { id = 1, addr = "10.0.0.1" }, { id = 2, addr = "10.0.0.2" } ]
`;

function errorOf(text: string, file = 'node1.toml'): string {
  try {
    parseConfig(text, file, registry);
  } catch (e) {
    expect(isClusterError(e, 'EINVAL')).toBe(true);
    return (e as Error).message;
  }
  throw new Error('expected the config to be refused');
}

describe('host names in addresses', () => {
  const named = MINIMAL.replace('"10.0.0.2"', '"db2.example:6000"');
  const hosts: Record<string, { address: string; family: number }[]> = {
    'db2.example': [{ address: 'fd00::2', family: 6 }, { address: '10.0.0.2', family: 4 }],
    'v6only.example': [{ address: 'fd00::9', family: 6 }],
    'same.example': [{ address: '10.0.0.1', family: 4 }],
  };
  const resolver: Resolver = async (host) => {
    const found = hosts[host];
    if (!found) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return found;
  };

  it('are kept by parseConfig and resolved to the cluster\'s family at start', async () => {
    const c = parseConfig(named, 'n.toml', registry);
    expect(c.cluster.nodes[1].addr).toEqual({ host: 'db2.example', port: 6000 });
    const r = await resolveConfig(c, resolver);
    expect(r.cluster.nodes.map((n) => n.addr)).toEqual([{ host: '10.0.0.1', port: 5405 }, { host: '10.0.0.2', port: 6000 }]);
    expect(r.node.listen).toEqual({ host: '10.0.0.1', port: 5405 });
    const self = await resolveConfig(parseConfig(named.replace('id = 1\n', 'id = 2\n'), 'n.toml', registry), resolver);
    expect(self.node.listen).toEqual({ host: '10.0.0.2', port: 6000 });
    expect(await resolveConfig(parseConfig(MINIMAL, 'n.toml', registry), resolver)).toEqual(parseConfig(MINIMAL, 'n.toml', registry));
  });

  it('errors name the file, the key and the host', async () => {
    const fail = (text: string) => resolveConfig(parseConfig(text, 'n.toml', registry), resolver).then(() => 'resolved', (e: Error) => e.message);
    expect(await fail(named.replace('db2.example', 'nosuch.example'))).toBe(
      'EINVAL: n.toml: cluster.nodes[1].addr = "nosuch.example:6000": cannot resolve host "nosuch.example": no such host (ENOTFOUND)');
    expect(await fail(named.replace('db2.example', 'v6only.example'))).toMatch(
      /cluster.nodes\[1\].addr = "v6only.example:6000": cannot resolve host "v6only.example": it has no IPv4 address \(only fd00::9\)/);
    expect(await fail(named.replace('db2.example:6000', 'same.example'))).toMatch(
      /cluster.nodes: addr "10.0.0.1:5405" appears twice \(after resolving host names\) \(nodes 1 and 2\)/);
    expect(await fail(named.replace('id = 1\n', 'id = 1\nlisten = "nosuch.example"\n'))).toMatch(/node.listen = "nosuch.example:5405": cannot resolve host "nosuch.example"/);
  });
});

describe('parseConfig: defaults', () => {
  it('fills everything a LAN needs from a minimal file', () => {
    const c = parseConfig(MINIMAL, '/etc/afcluster/node1.toml', registry);
    expect(c.node).toEqual({
      id: 1, listen: { host: '10.0.0.1', port: 5405 }, socket: '/run/afcluster/afcluster.sock',
      socketDirMode: 0o750, socketMode: 0o660, stateDir: '/var/lib/afcluster',
    });
    expect(c.cluster).toEqual({
      name: 'afcluster', driver: 'totem', transport: 'udpu', mtu: 'auto',
      nodes: [{ id: 1, addr: { host: '10.0.0.1', port: 5405 }, votes: 1 }, { id: 2, addr: { host: '10.0.0.2', port: 5405 }, votes: 1 }],
    });
    expect(c.crypto).toEqual({});
    expect(c.limits.messageSizeMax).toBe(1024 * 1024);
    expect(c.drivers).toEqual({ totem: { token_ms: 1000, consensus_ms: 1200, window: 50 } });
    expect(c.file).toBe('/etc/afcluster/node1.toml');
  });

  it('reads every key of the design sketch, resolves relative paths against the file, parses driver sections', () => {
    const c = parseConfig(`
[node]
id = 2
name = "beta"
listen = "127.0.0.2:6000"
socket = "run/af.sock"
socket_dir_mode = 0o700
socket_mode = 0o600
socket_owner = "afc"
socket_group = 1000
state_dir = "/srv/afc"
[cluster]
name = "demo"
driver = "cman"
transport = "multicast"
multicast_addr = "239.1.2.3:7000"
mtu = 9000
nodes = [ { id = 1, addr = "127.0.0.1:6000", name = "alpha" }, { id = 2, addr = "127.0.0.2:6000" } ]
[crypto]
key_file = "authkey"
[limits]
message_size_max = 65536
members_max = 16
[totem]
token_ms = 50
[cman]
ack_timeout_ms = 50
`, '/cfg/node2.toml', registry);
    expect(c.node).toMatchObject({ id: 2, name: 'beta', listen: { host: '127.0.0.2', port: 6000 }, socket: '/cfg/run/af.sock',
      socketDirMode: 0o700, socketMode: 0o600, socketOwner: 'afc', socketGroup: '1000', stateDir: '/srv/afc' });
    expect(c.cluster).toMatchObject({ name: 'demo', driver: 'cman', transport: 'multicast', mtu: 9000,
      multicastAddr: { host: '239.1.2.3', port: 7000 } });
    expect(c.cluster.nodes[0]).toEqual({ id: 1, addr: { host: '127.0.0.1', port: 6000 }, name: 'alpha', votes: 1 });
    expect(c.crypto.keyFile).toBe('/cfg/authkey');
    expect(c.limits).toMatchObject({ messageSizeMax: 65536, membersMax: 16, socketsMax: 1024 });
    expect(c.drivers).toEqual({ totem: { token_ms: 50, consensus_ms: 1200, window: 50 }, cman: { ack_timeout_ms: 50 } });
  });

  it('gives multicast a default group and takes the node name from its entry', () => {
    const c = parseConfig(MINIMAL.replace('[cluster]', '[cluster]\ntransport = "multicast"')
      .replace('addr = "10.0.0.1" }', 'addr = "10.0.0.1", name = "a" }'), 'n.toml', registry);
    expect(c.cluster.multicastAddr).toEqual({ host: '239.192.105.5', port: 5405 });
    expect(c.node.name).toBe('a');
  });

  it('accepts IPv6 clusters', () => {
    const c = parseConfig(`[node]\nid = 1\n[cluster]\nnodes = [ { id = 1, addr = "[::1]:7000" }, { id = 2, addr = "[fd00::2]" } ]\n`, 'n.toml', registry);
    expect(c.node.listen).toEqual({ host: '::1', port: 7000 });
    expect(c.cluster.nodes[1].addr).toEqual({ host: 'fd00::2', port: 5405 });
  });
});

describe('parseConfig: refusals', () => {
  it('driver option out of range: file, key, value, expected form', () => {
    expect(errorOf(`${MINIMAL}[totem]\ntoken_ms = -5\n`)).toBe('EINVAL: node1.toml: totem.token_ms = -5: expected an integer >= 10');
    expect(errorOf(`${MINIMAL}[totem]\nconsensus_ms = "fast"\n`)).toBe('EINVAL: node1.toml: totem.consensus_ms = "fast": expected an integer from 10 to 60000');
  });

  it('unknown keys, in core and driver sections, list the known ones', () => {
    expect(errorOf(`${MINIMAL}[totem]\ntokn_ms = 5\n`)).toBe('EINVAL: node1.toml: totem.tokn_ms: unknown key (known: token_ms, consensus_ms, window)');
    expect(errorOf(MINIMAL.replace('id = 1\n', 'id = 1\nlisen = "10.0.0.1"\n'))).toMatch(
      /^EINVAL: node1.toml: node.lisen: unknown key \(known: id, name, listen, socket, socket_dir_mode, socket_mode, socket_owner, socket_group, state_dir\)$/);
    expect(errorOf(MINIMAL.replace('addr = "10.0.0.2"', 'adr = "10.0.0.2"'))).toMatch(/cluster.nodes\[1\].adr: unknown key \(known: id, addr, name, votes\)/);
  });

  it('a section for an unregistered driver or a stray section is an unknown key', () => {
    expect(errorOf(`${MINIMAL}[tipc]\nx = 1\n`)).toBe('EINVAL: node1.toml: tipc: unknown key (known: node, cluster, crypto, limits, quorum, log, metrics, access, cman, totem)');
    expect(errorOf(`limits = 5\n${MINIMAL}`)).toBe('EINVAL: node1.toml: limits = 5: expected a table [limits]');
  });

  it('an unknown driver name lists the registered ones', () => {
    expect(errorOf(MINIMAL.replace('[cluster]', '[cluster]\ndriver = "tipc"'))).toBe(
      'EINVAL: node1.toml: cluster.driver = "tipc": unknown driver (registered: cman, totem)');
  });

  it('TOML syntax errors give file:line:column', () => {
    const msg = errorOf('[node]\nid = 1\nname = "unterminated\n');
    expect(msg).toMatch(/^EINVAL: node1.toml:3:\d+: TOML syntax error: /);
    expect(errorOf('[node]\nid = 1\n[node]\n')).toMatch(/^EINVAL: node1.toml:3:\d+: TOML syntax error/);
  });

  it('missing required keys are named with their form', () => {
    expect(errorOf('[cluster]\nnodes = [ { id = 1, addr = "10.0.0.1" } ]\n')).toBe('EINVAL: node1.toml: node.id: missing: expected an integer from 1 to 4294967295');
    expect(errorOf('[node]\nid = 1\n')).toMatch(/^EINVAL: node1.toml: cluster.nodes: missing: expected an array of 1 to 1024 tables/);
  });

  it('wrong types and bad values of core keys', () => {
    expect(errorOf(MINIMAL.replace('id = 1\n[cluster]', 'id = 0\n[cluster]'))).toMatch(/node.id = 0: expected an integer from 1 to 4294967295/);
    expect(errorOf(MINIMAL.replace('id = 1\n[cluster]', 'id = 4294967296\n[cluster]'))).toMatch(/node.id = 4294967296: expected an integer from 1 to 4294967295/);
    expect(errorOf(MINIMAL.replace('"10.0.0.2"', '"node_b:5405"'))).toMatch(/cluster.nodes\[1\].addr = "node_b:5405": expected an address "host:port"/);
    expect(errorOf(MINIMAL.replace('"10.0.0.2"', '"10.0.0.300"'))).toMatch(/cluster.nodes\[1\].addr = "10.0.0.300": expected an address "host:port"/);
    expect(errorOf(`${MINIMAL}[log]\nlevel = "verbose"\n`)).toMatch(/log.level = "verbose": expected one of "trace", "debug", "info", "warn", "error", "fatal"/);
    expect(errorOf(`${MINIMAL}[metrics]\nlisten = "localhost:9405"\n`)).toMatch(/metrics.listen = "localhost:9405": expected an address "IP:port"/);
    expect(errorOf(MINIMAL.replace('"10.0.0.2"', '"10.0.0.2:70000"'))).toMatch(/cluster.nodes\[1\].addr = "10.0.0.2:70000": expected an address/);
    expect(errorOf(MINIMAL.replace('[cluster]', '[cluster]\ntransport = "tcp"'))).toMatch(/cluster.transport = "tcp": expected one of "udpu", "multicast"/);
    expect(errorOf(MINIMAL.replace('[cluster]', '[cluster]\nname = "my cluster"'))).toMatch(/cluster.name = "my cluster": expected a name of 1 to 64 characters/);
    expect(errorOf(`${MINIMAL}[limits]\nmessage_size_max = 1.5\n`)).toMatch(/limits.message_size_max = 1.5: expected an integer from 1 to 67108864/);
    expect(errorOf(MINIMAL.replace('id = 1\n[cluster]', `id = 1\nsocket = "/${'x'.repeat(120)}"\n[cluster]`))).toMatch(/node.socket = "\/x{120}": expected a path of at most 107 bytes/);
  });

  it('reports every error, one line each', () => {
    const msg = errorOf(`${MINIMAL}[totem]\ntoken_ms = 1\nwindow = 0\n[cman]\nack = 1\n`);
    expect(msg.split('\n')).toEqual([
      'EINVAL: node1.toml: cman.ack: unknown key (known: ack_timeout_ms)',
      'node1.toml: totem.token_ms = 1: expected an integer >= 10',
      'node1.toml: totem.window = 0: expected an integer >= 1',
    ]);
  });

  it('a driver\'s cross-key refinement prints its own sentence, and waits until every key is valid', () => {
    const reg = new DriverRegistry();
    reg.register(entry('totem', z.strictObject({ a: z.int().min(1).default(10), b: z.int().min(1).default(5) })
      .superRefine((o, ctx) => {
        if (o.b >= o.a) ctx.addIssue({ code: 'custom', path: ['b'], message: 'b must be below a, or nothing works' });
      })));
    const refuse = (text: string) => {
      try {
        parseConfig(text, 'node1.toml', reg);
      } catch (e) {
        return (e as Error).message;
      }
      throw new Error('expected a refusal');
    };
    expect(refuse(`${MINIMAL}[totem]\na = 3\n`)).toBe('EINVAL: node1.toml: totem.b: b must be below a, or nothing works');
    expect(refuse(`${MINIMAL}[totem]\na = 3\nb = 4\n`)).toBe('EINVAL: node1.toml: totem.b = 4: b must be below a, or nothing works');
    expect(refuse(`${MINIMAL}[totem]\na = 0\n`)).toBe('EINVAL: node1.toml: totem.a = 0: expected an integer >= 1');
  });

  it('quorum: votes and options, and the combinations that cannot mean what they say, named by key', () => {
    const three = MINIMAL.replace('{ id = 2, addr = "10.0.0.2" } ]', '{ id = 2, addr = "10.0.0.2", votes = 2 }, { id = 3, addr = "10.0.0.3" } ]');
    const c = parseConfig(`${three}[quorum]\nauto_tie_breaker = true\nauto_tie_breaker_node = 3\nlast_man_standing = true\n`, 'n.toml', registry);
    expect(c.cluster.nodes.map((n) => n.votes)).toEqual([1, 2, 1]);
    expect(c.quorum).toEqual({
      enabled: true, expectedVotes: 0, twoNode: false, waitForAll: false, lastManStanding: true, lastManStandingWindowMs: 10_000,
      autoTieBreaker: true, autoTieBreakerNode: 3,
    });
    expect(parseConfig(`${MINIMAL}[quorum]\ntwo_node = true\n`, 'n.toml', registry).quorum).toMatchObject({ twoNode: true, waitForAll: true });
    expect(errorOf(`${three}[quorum]\ntwo_node = true\n`)).toBe(
      'EINVAL: node1.toml: quorum.two_node = true: expected exactly 2 nodes of 1 vote each in cluster.nodes (found 3 nodes, 4 votes)');
    expect(errorOf(`${MINIMAL}[quorum]\ntwo_node = true\nauto_tie_breaker = true\n`)).toMatch(/quorum.auto_tie_breaker = true: expected false with quorum.two_node/);
    expect(errorOf(`${MINIMAL}[quorum]\ntwo_node = true\nlast_man_standing = true\n`)).toMatch(/quorum.last_man_standing = true: expected false with quorum.two_node/);
    expect(errorOf(`${three}[quorum]\nexpected_votes = 3\n`)).toMatch(/quorum.expected_votes = 3: expected 0 \(the sum of the nodes' votes, 4\) or at least 4/);
    expect(errorOf(`${three}[quorum]\nauto_tie_breaker_node = 9\n`)).toMatch(/quorum.auto_tie_breaker_node = 9: expected "lowest", "highest" or the id of one of cluster.nodes \(1, 2, 3\)/);
    expect(errorOf(MINIMAL.replace(/addr = "10.0.0.(\d)" }/g, 'addr = "10.0.0.$1", votes = 0 }'))).toMatch(/expected at least one node with votes > 0/);
    expect(errorOf(`${MINIMAL}[quorum]\nlast_man_standing_window_ms = 10\n`)).toMatch(/quorum.last_man_standing_window_ms = 10: expected an integer/);
  });

  it('cross-checks: this node in the list, unique ids and addresses, listen, multicast group, limits', () => {
    expect(errorOf(MINIMAL.replace('id = 1\n[cluster]', 'id = 3\n[cluster]'))).toBe('EINVAL: node1.toml: node.id = 3: expected the id of one of cluster.nodes (1, 2)');
    expect(errorOf(MINIMAL.replace('{ id = 2,', '{ id = 1,'))).toMatch(/cluster.nodes: id 1 appears twice: expected unique node ids/);
    expect(errorOf(MINIMAL.replace('"10.0.0.2"', '"10.0.0.1:5405"'))).toMatch(/cluster.nodes: addr "10.0.0.1:5405" appears twice \(nodes 1 and 2\)/);
    expect(errorOf(MINIMAL.replace('id = 1\n[cluster]', 'id = 1\nlisten = "10.0.0.9:5405"\n[cluster]'))).toBe(
      'EINVAL: node1.toml: node.listen = "10.0.0.9:5405": expected this node\'s address in cluster.nodes, "10.0.0.1:5405" (or leave node.listen out)');
    expect(errorOf(MINIMAL.replace('[cluster]', '[cluster]\ntransport = "multicast"\nmulticast_addr = "10.1.1.1:5405"'))).toMatch(
      /cluster.multicast_addr = "10.1.1.1:5405": expected an IPv4 multicast address/);
    expect(errorOf(`${MINIMAL}[limits]\nrecv_queue_bytes_max = 1000\n`)).toMatch(/limits.recv_queue_bytes_max = 1000: expected at least limits.message_size_max \(1048576\)/);
    expect(errorOf(MINIMAL.replace('"10.0.0.2"', '"[::2]"'))).toMatch(/node 2 addr "\[::2\]:5405": expected an IPv4 address like the first node's/);
  });
});

describe('parseConfig: [access]', () => {
  it('reads rules with names resolved to ids, send and receive defaulting to join; none by default', () => {
    expect(parseConfig(MINIMAL, 'n.toml', registry).access).toEqual({ groups: [] });
    const c = parseConfig(`${MINIMAL}
[[access.group]]
name = "app.*"
join = ["*", "root", "@root", "1234", "@567"]
send = ["root"]
[[access.group]]
name = "afcluster.locks"
join = []
`, 'n.toml', registry);
    const join = [{ kind: 'anyone' }, { kind: 'user', id: 0 }, { kind: 'group', id: 0 }, { kind: 'user', id: 1234 }, { kind: 'group', id: 567 }];
    expect(c.access.groups).toEqual([
      { name: 'app.*', join, send: [{ kind: 'user', id: 0 }], receive: join },
      { name: 'afcluster.locks', join: [], send: [], receive: [] },
    ]);
  });

  it('refuses unknown users and groups, a rule twice for one name, and malformed entries, by key', () => {
    const msg = errorOf(`${MINIMAL}
[[access.group]]
name = "g"
join = ["no-such-user-here", "@no-such-group-here"]
[[access.group]]
name = "g"
join = ["*"]
[[access.group]]
name = "h"
join = ["bad name"]
`);
    expect(msg).toContain('node1.toml: access.group[2].join[0] = "bad name": expected "*" (anyone), a user');
    const names = errorOf(`${MINIMAL}
[[access.group]]
name = "g"
join = ["no-such-user-here", "@no-such-group-here"]
[[access.group]]
name = "g"
join = ["*"]
`);
    expect(names).toContain('node1.toml: access.group[0].join[0] = "no-such-user-here": no such user in /etc/passwd');
    expect(names).toContain('node1.toml: access.group[0].join[1] = "@no-such-group-here": no such group in /etc/group');
    expect(names).toContain('node1.toml: access.group[1].name = "g": access.group[0] names the same groups');
  });

  it('a reload applies changed rules', () => {
    const before = parseConfig(MINIMAL, 'n.toml', registry);
    const after = parseConfig(`${MINIMAL}\n[[access.group]]\nname = "g"\njoin = ["0"]\n`, 'n.toml', registry);
    const plan = planReload(before, after);
    expect(plan.apply).toEqual(['access.group']);
    expect(plan.access).toBe(after.access);
    expect(planReload(after, after).apply).toEqual([]);
  });
});

describe('loadConfig and writeLocalCluster', () => {
  const dir = mkdtempSync(join(tmpdir(), 'afc-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes N loadable node configs on 127.0.0.N with a shared key and driver sections', () => {
    const out = writeLocalCluster({ dir, nodes: 3, driver: 'totem', basePort: 7405, crypto: true,
      driverSections: { totem: { token_ms: 100 } }, limits: { message_size_max: 65536 } });
    expect(out.configs).toEqual([1, 2, 3].map((i) => join(dir, `node${i}.toml`)));
    expect(out.keyFile).toBe(join(dir, 'authkey'));
    expect(statSync(out.keyFile!).mode & 0o777).toBe(0o600);
    const configs = out.configs.map((p) => loadConfig(p, registry));
    configs.forEach((c, k) => {
      expect(c.node.id).toBe(k + 1);
      expect(c.node.listen).toEqual({ host: `127.0.0.${k + 1}`, port: 7405 });
      expect(c.node.socket).toBe(join(dir, `node${k + 1}.sock`));
      expect(c.node.stateDir).toBe(join(dir, `node${k + 1}-state`));
      expect(c.crypto.keyFile).toBe(out.keyFile);
      expect(c.cluster.nodes.map((n) => n.id)).toEqual([1, 2, 3]);
      expect(c.limits.messageSizeMax).toBe(65536);
      expect(c.drivers.totem).toEqual({ token_ms: 100, consensus_ms: 1200, window: 50 });
    });
    const plain = writeLocalCluster({ dir: join(dir, 'plain'), nodes: 1, driver: 'cman', crypto: false });
    expect(plain.keyFile).toBeUndefined();
    expect(loadConfig(plain.configs[0], registry).crypto).toEqual({});
    expect(() => writeLocalCluster({ dir, nodes: 255, driver: 'totem', crypto: false })).toThrow(/1 to 254 nodes/);
  });

  it('names a missing file', () => {
    expect(() => loadConfig(join(dir, 'nope.toml'), registry)).toThrow(/ENOENT: .*nope.toml: no such config file/);
    writeFileSync(join(dir, 'bad.toml'), '[node]\nid = "x"\n');
    expect(() => loadConfig(join(dir, 'bad.toml'), registry)).toThrow(`${join(dir, 'bad.toml')}: node.id = "x": expected an integer`);
  });
});
