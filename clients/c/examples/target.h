/* Which daemon an example talks to: --socket PATH, --node N of the running `afcluster up`, or
 * the default (node 1 of a running `afcluster up`, else /run/afcluster/afcluster.sock), as the
 * TypeScript commands choose it (tools/target.ts). */
#ifndef AFC_EXAMPLE_TARGET_H
#define AFC_EXAMPLE_TARGET_H

#include <stddef.h>

#define AFC_DEFAULT_SOCKET "/run/afcluster/afcluster.sock"

/* Writes the socket path into out (size bytes). node: 0 = not given. 0, or -1 with a message
 * on stderr. */
int afc_resolve_socket(const char *socket, int node, char *out, size_t size);

#endif
