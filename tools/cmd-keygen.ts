// `afcluster keygen`: writes a fresh cluster key (32 random bytes, mode 0600).
import { writeKeyFile } from '../core/crypto/keyfile.ts';
import { parseFlags, UsageError, type Command } from './command.ts';

export const command: Command = {
  name: 'keygen',
  summary: 'write a fresh cluster key file (mode 0600)',
  help: `usage: afcluster keygen --out FILE [--force]

Writes 32 random bytes to FILE with mode 0600. Copy the same file to every node and name it
in each node's config:

  [crypto]
  key_file = "FILE"

Every datagram is then encrypted and authenticated (XChaCha20-Poly1305); nodes without the
key, or with another key, cannot join or read the cluster.

options:
  --out FILE   where to write the key (refuses an existing file)
  --force      replace an existing file (every node then needs the new key)`,
  async run(argv) {
    const { values } = parseFlags(argv, { out: { type: 'string' }, force: { type: 'boolean' } });
    if (!values.out) throw new UsageError('--out FILE is required (for example: afcluster keygen --out /etc/afcluster/authkey)');
    writeKeyFile(values.out, { force: values.force === true });
    console.log(`wrote a new cluster key to ${values.out} (mode 0600); copy it to every node (keeping mode 0600) and set [crypto] key_file = "${values.out}" in each node's config`);
    return 0;
  },
};
