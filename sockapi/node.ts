// The embedded node with the drivers that ship with afcluster: a whole node inside the calling
// process, no daemon (core/groups/embedded.ts takes any registry; this passes the built-in one).
// Its config is a node's TOML file (docs/CONFIG.md), read with loadNodeConfig or parseNodeConfig.
import { builtinRegistry } from '../drivers/builtin.ts';
import { createNode as createNodeWith, type CreateNodeOptions, type EmbeddedNode } from '../core/groups/embedded.ts';
import { loadConfig, parseConfig, resolveConfig, type NodeConfig } from '../core/config/index.ts';

export { EmbeddedSocket, type EmbeddedNode, type SocketOptions } from '../core/groups/embedded.ts';
export type { NodeConfig } from '../core/config/index.ts';

/** A node built from `config` with the built-in drivers (totem, cman) unless a registry is given.
 *  Host names in its addresses are resolved first. */
export async function createNode(opts: Omit<CreateNodeOptions, 'registry'> & Partial<Pick<CreateNodeOptions, 'registry'>>): Promise<EmbeddedNode> {
  return createNodeWith({ ...opts, config: await resolveConfig(opts.config), registry: opts.registry ?? builtinRegistry() });
}

/** Reads and validates a node's config file (with the built-in drivers' sections); errors name file and key. */
export function loadNodeConfig(path: string): NodeConfig {
  return loadConfig(path, builtinRegistry());
}

/** The same for config text; `file` names it in errors and anchors relative paths (default: the working directory). */
export function parseNodeConfig(text: string, file = '<embedded>'): NodeConfig {
  return parseConfig(text, file, builtinRegistry());
}
