// The parsed, validated config of one node (core/config parses TOML into this).
// TOML keys are snake_case; here they are camelCase with the unit last.

export interface Endpoint {
  /** An IP literal, or a host name until resolveConfig has resolved it. */
  readonly host: string;
  readonly port: number;
}

export interface NodeEntry {
  readonly id: number;
  readonly addr: Endpoint;
  readonly name?: string;
  /** Quorum votes (default 1). */
  readonly votes: number;
}

/** Whom an access rule names: anyone, one user (by uid), or the members of one group (by gid). */
export type AccessPrincipal =
  | { readonly kind: 'anyone' }
  | { readonly kind: 'user'; readonly id: number }
  | { readonly kind: 'group'; readonly id: number };

/** One [[access.group]] rule. */
export interface AccessRule {
  /** A group name, or a prefix ending in "*" ("*" alone: every group). */
  readonly name: string;
  /** Who may bind a socket to the group. */
  readonly join: readonly AccessPrincipal[];
  /** Who may send to it. */
  readonly send: readonly AccessPrincipal[];
  /** Who gets its messages (a member that may not gets its membership events only). */
  readonly receive: readonly AccessPrincipal[];
}

export interface NodeConfig {
  /** [node] */
  readonly node: {
    readonly id: number;
    readonly name?: string;
    /** UDP address this node listens on (must match its entry in cluster.nodes). */
    readonly listen: Endpoint;
    /** Path of the bridge's unix datagram socket. */
    readonly socket: string;
    /** Mode of the socket's directory (default 0o750) and of the socket (default 0o660). */
    readonly socketDirMode: number;
    readonly socketMode: number;
    /** Owner and group of the socket and its directory (name or number); absent = the daemon's. */
    readonly socketOwner?: string;
    readonly socketGroup?: string;
    /** Directory for durable state (ring seq). */
    readonly stateDir: string;
  };
  /** [cluster] */
  readonly cluster: {
    readonly name: string;
    readonly driver: string;
    readonly nodes: readonly NodeEntry[];
    /** 'udpu' = unicast fan-out to the node list (default); 'multicast' = IP multicast. */
    readonly transport: 'udpu' | 'multicast';
    readonly multicastAddr?: Endpoint;
    /** Path MTU of the network (IP packet size), or 'auto' (default): the interface's, found at start (core/transport/mtu.ts). */
    readonly mtu: number | 'auto';
  };
  /** [crypto]; keyFile absent = no encryption (said loudly at start-up). */
  readonly crypto: {
    readonly keyFile?: string;
  };
  /** [limits] of the bridge. */
  readonly limits: {
    readonly messageSizeMax: number;
    readonly socketsMax: number;
    readonly groupsMax: number;
    readonly groupNameMax: number;
    /** Per-socket receive queue, in events and in bytes. */
    readonly recvQueueMax: number;
    readonly recvQueueBytesMax: number;
    /** A socket over its queue bound that reads nothing for this long is evicted (overrun). */
    readonly recvStallMs: number;
    readonly membersMax: number;
  };
  /** [quorum]: votequorum's options (core/quorum/quorum.ts says what each does). */
  readonly quorum: {
    readonly enabled: boolean;
    /** 0 = the sum of the nodes' votes. */
    readonly expectedVotes: number;
    readonly twoNode: boolean;
    /** Defaults to twoNode. */
    readonly waitForAll: boolean;
    readonly lastManStanding: boolean;
    readonly lastManStandingWindowMs: number;
    readonly autoTieBreaker: boolean;
    readonly autoTieBreakerNode: 'lowest' | 'highest' | number;
    /** Puts a node down (power fencing): run as `COMMAND NODE_ID` by the lock service; exit 0 = done. */
    readonly fenceCommand?: string;
  };
  /** [log]: the daemon's log level and format (the command line may override both). */
  readonly log: {
    readonly level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
    readonly format: 'auto' | 'json' | 'pretty';
  };
  /** [metrics]: where the Prometheus endpoint listens; absent = no endpoint. */
  readonly metrics: {
    readonly listen?: Endpoint;
  };
  /** [access]: who may join, send to and receive from which groups (core/af/access.ts applies it). */
  readonly access: {
    /** The [[access.group]] rules, in file order, with names resolved to ids. */
    readonly groups: readonly AccessRule[];
  };
  /** Each driver's own section, parsed by its registry entry's optionsSchema. */
  readonly drivers: Readonly<Record<string, unknown>>;
  /** Path of the file it came from ('<embedded>' for generated configs). */
  readonly file: string;
}
