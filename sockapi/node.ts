// The embedded node with the drivers that ship with afcluster: a whole node inside the calling
// process, no daemon (core/groups/embedded.ts takes any registry; this passes the built-in one).
import { builtinRegistry } from '../drivers/builtin.ts';
import { createNode as createNodeWith, type CreateNodeOptions, type EmbeddedNode } from '../core/groups/embedded.ts';

export { EmbeddedSocket, type EmbeddedNode, type SocketOptions } from '../core/groups/embedded.ts';

/** A node built from `config` with the built-in drivers (totem, cman) unless a registry is given. */
export function createNode(opts: Omit<CreateNodeOptions, 'registry'> & Partial<Pick<CreateNodeOptions, 'registry'>>): Promise<EmbeddedNode> {
  return createNodeWith({ ...opts, registry: opts.registry ?? builtinRegistry() });
}
