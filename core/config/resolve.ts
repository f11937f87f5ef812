// Host names in addresses (node.listen, cluster.nodes[].addr) are resolved when the daemon
// starts and at each reload: the transport maps a datagram's source address to a node, so it
// needs IP addresses. Every name becomes one address of the cluster's family (the family of the
// literal addresses in the file, else IPv4 when the name has one, else IPv6); then the address
// checks parseConfig had to leave for later run on the result.
import { lookup } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { ClusterError } from '../api/errors.ts';
import type { Endpoint, NodeConfig } from './types.ts';
import { checkAddresses, hostNames, nodeKey } from './parse.ts';
import { formatEndpoint, isIpLiteral } from './schema.ts';

export type Resolver = (host: string) => Promise<readonly { address: string; family: number }[]>;

const systemResolver: Resolver = (host) => lookup(host, { all: true, verbatim: true });

/** The config with every host name replaced by an address; EINVAL naming key and host when a
 *  name does not resolve or the addresses do not pass the checks. Literal-only configs come back as they are. */
export async function resolveConfig(config: NodeConfig, resolver: Resolver = systemResolver): Promise<NodeConfig> {
  const names = hostNames(config);
  if (names.length === 0) return config;
  const literals = [config.node.listen, ...config.cluster.nodes.map((n) => n.addr)].filter((e) => isIpLiteral(e.host));
  const family = literals.length > 0 ? (isIPv4(literals[0].host) ? 4 : 6) : undefined;
  const resolved = new Map<string, string>();
  const failed = new Map<string, string>();
  await Promise.all(names.map(async (name) => {
    try {
      const all = await resolver(name);
      const pick = all.find((a) => a.family === (family ?? 4)) ?? (family === undefined ? all.find((a) => a.family === 6) : undefined);
      if (pick) resolved.set(name, pick.address);
      else failed.set(name, all.length ? `it has no IPv${family} address (only ${all.map((a) => a.address).join(', ')}), and every node must use one family` : 'no address');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      failed.set(name, code === 'ENOTFOUND' ? 'no such host (ENOTFOUND)' : `${code ?? ''} ${(e as Error).message}`.trim());
    }
  }));
  const file = config.file;
  const errors: string[] = [];
  const swap = (e: Endpoint, key: string): Endpoint => {
    if (isIpLiteral(e.host)) return e;
    const address = resolved.get(e.host);
    if (address !== undefined) return { host: address, port: e.port };
    errors.push(`${file}: ${key} = "${formatEndpoint(e)}": cannot resolve host "${e.host}": ${failed.get(e.host)}`);
    return e;
  };
  const self = config.cluster.nodes.find((n) => n.id === config.node.id);
  const nodes = config.cluster.nodes.map((n) => ({ ...n, addr: swap(n.addr, `${nodeKey(config, n.id)}.addr`) }));
  const listen = self && config.node.listen === self.addr ? nodes.find((n) => n.id === self.id)!.addr : swap(config.node.listen, 'node.listen');
  if (errors.length > 0) throw new ClusterError('EINVAL', [...new Set(errors)].join('\n'));
  const out: NodeConfig = { ...config, node: { ...config.node, listen }, cluster: { ...config.cluster, nodes } };
  checkAddresses(out, errors, undefined, true);
  if (errors.length > 0) throw new ClusterError('EINVAL', errors.join('\n'));
  return out;
}
