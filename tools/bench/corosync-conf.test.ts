// Proves the reference's corosync.conf: every node listed with its address and nodeid on knet, crypto none or aes256+sha256 with the keyfile, files in the node's directory.
import { describe, expect, it } from 'vitest';
import { corosyncConf } from './corosync-conf.ts';

const addresses = ['10.213.7.1', '10.213.7.2', '10.213.7.3'];

describe('corosyncConf', () => {
  it('writes a 3-node knet cluster with crypto off', () => {
    expect(corosyncConf({ addresses, nodeDir: '/tmp/x/node2' })).toBe(`# Written by afcluster bench --reference corosync.
totem {
    version: 2
    cluster_name: afcbench
    transport: knet
    crypto_cipher: none
    crypto_hash: none
}

nodelist {
    node {
        ring0_addr: 10.213.7.1
        name: node1
        nodeid: 1
    }
    node {
        ring0_addr: 10.213.7.2
        name: node2
        nodeid: 2
    }
    node {
        ring0_addr: 10.213.7.3
        name: node3
        nodeid: 3
    }
}

quorum {
    provider: corosync_votequorum
}

logging {
    to_stderr: no
    to_syslog: no
    to_logfile: yes
    logfile: /tmp/x/node2/corosync.log
    timestamp: on
}

system {
    state_dir: /tmp/x/node2/state
    sched_rr: no
    move_to_root_cgroup: no
}
`);
  });

  it('turns on aes256 and sha256 with the authkey when given one', () => {
    const text = corosyncConf({ addresses, nodeDir: '/d', keyfile: '/d/authkey' });
    expect(text).toContain('    crypto_cipher: aes256\n    crypto_hash: sha256\n    keyfile: /d/authkey\n}');
    expect(text).not.toContain('none');
  });

  it('lists as many nodes as addresses', () => {
    const text = corosyncConf({ addresses: ['a', 'b', 'c', 'd', 'e'], nodeDir: '/d' });
    expect([...text.matchAll(/ring0_addr: (\S+)/g)].map((m) => m[1])).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect([...text.matchAll(/nodeid: (\d+)/g)].map((m) => Number(m[1]))).toEqual([1, 2, 3, 4, 5]);
  });
});
