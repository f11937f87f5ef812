// core/config: the per-node TOML config, its schema and defaults, and local test clusters.
export type { Endpoint, NodeConfig, NodeEntry } from './types.ts';
export { loadConfig, parseConfig } from './parse.ts';
export { writeLocalCluster, localAddress, type LocalCluster, type LocalClusterOptions } from './local.ts';
export {
  DEFAULT_PORT, DEFAULT_SOCKET, DEFAULT_STATE_DIR, DEFAULT_CLUSTER_NAME, DEFAULT_DRIVER, DEFAULT_MULTICAST_ADDR,
  parseEndpoint, formatEndpoint,
} from './schema.ts';
export { resolveConfig, type Resolver } from './resolve.ts';
export { DEFAULT_CONFIG, CONFIG_ENV, DEFAULT_METRICS_PORT, LOG_LEVELS, LOG_FORMATS, isIpLiteral } from './schema.ts';
export { planReload, RELOADABLE, type ReloadPlan } from './reload.ts';
