// corosync.conf for the bench's reference cluster (`afcluster bench --reference corosync`): N
// nodes on knet, crypto as the bench's setting, every file the daemon writes kept in the node's
// own directory (pure: text in, text out; tools/bench/corosync.ts writes it).

/** The crypto corosync uses with --crypto on: knet's AES-256 with SHA-256 HMAC, keyed by a generated authkey. */
export const COROSYNC_CIPHER = 'aes256';
export const COROSYNC_HASH = 'sha256';
/** Bytes of the generated authkey (what corosync-keygen writes by default). */
export const AUTHKEY_BYTES = 256;
export const COROSYNC_CLUSTER_NAME = 'afcbench';

export interface CorosyncConfSpec {
  /** Node K's address is addresses[K - 1] (its nodeid is K). */
  readonly addresses: readonly string[];
  /** The authkey's path when crypto is on; undefined = crypto off (cipher and hash none). */
  readonly keyfile?: string;
  /** This node's directory: its log file and state_dir (ring id files) go there. */
  readonly nodeDir: string;
}

export function corosyncConf(s: CorosyncConfSpec): string {
  const crypto = s.keyfile === undefined
    ? ['    crypto_cipher: none', '    crypto_hash: none']
    : [`    crypto_cipher: ${COROSYNC_CIPHER}`, `    crypto_hash: ${COROSYNC_HASH}`, `    keyfile: ${s.keyfile}`];
  const nodes = s.addresses.flatMap((addr, i) => [
    '    node {', `        ring0_addr: ${addr}`, `        name: node${i + 1}`, `        nodeid: ${i + 1}`, '    }',
  ]);
  return [
    '# Written by afcluster bench --reference corosync.',
    'totem {',
    '    version: 2',
    `    cluster_name: ${COROSYNC_CLUSTER_NAME}`,
    '    transport: knet',
    ...crypto,
    '}',
    '',
    'nodelist {',
    ...nodes,
    '}',
    '',
    'quorum {',
    '    provider: corosync_votequorum',
    '}',
    '',
    'logging {',
    '    to_stderr: no',
    '    to_syslog: no',
    '    to_logfile: yes',
    `    logfile: ${s.nodeDir}/corosync.log`,
    '    timestamp: on',
    '}',
    '',
    // Normal scheduling like our daemons (corosync's default is SCHED_RR, which on a shared
    // machine would let it preempt everything else); and no move of the host's cgroups.
    'system {',
    `    state_dir: ${s.nodeDir}/state`,
    '    sched_rr: no',
    '    move_to_root_cgroup: no',
    '}',
    '',
  ].join('\n');
}
