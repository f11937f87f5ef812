// User and group names to ids, from the system's account files (/etc/passwd, /etc/group): what
// node.socket_owner, node.socket_group and the [access] rules name. Names that live only in a
// directory service (NSS: LDAP, ...) are not in these files: name such users and groups by id.
import { readFileSync } from 'node:fs';

export interface AccountFiles {
  readonly passwd: string;
  readonly group: string;
}

export const SYSTEM_ACCOUNTS: AccountFiles = { passwd: '/etc/passwd', group: '/etc/group' };

/** The id of user or group `name` (a number is its own id); undefined when there is no such entry. */
export function lookupId(name: string, kind: 'user' | 'group', files: AccountFiles = SYSTEM_ACCOUNTS): number | undefined {
  if (/^\d+$/.test(name)) return Number(name);
  let text: string;
  try {
    text = readFileSync(kind === 'user' ? files.passwd : files.group, 'utf8');
  } catch {
    return undefined;
  }
  const line = text.split('\n').find((l) => l.split(':')[0] === name);
  const id = line === undefined ? NaN : Number(line.split(':')[2]);
  return Number.isInteger(id) && id >= 0 ? id : undefined;
}
