/* See target.h. The record of a running `afcluster up` is JSON written by tools/target.ts
 * (writeUpRecord): { "pid": P, "dir": ..., "driver": ..., "nodes": [ { "id": N, "socket": "...",
 * ... } ] }. Only the few fields needed are picked out here. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L

#include "target.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static char *read_record(char *path, size_t size)
{
    const char *base = getenv("XDG_RUNTIME_DIR");
    if (!base || !*base) base = getenv("TMPDIR");
    if (!base || !*base) base = "/tmp";
    snprintf(path, size, "%s/afcluster-up-%ld/current", base, (long)getuid());
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    size_t cap = 1 << 16, n = 0;
    char *text = malloc(cap + 1);
    if (text) n = fread(text, 1, cap, f);
    fclose(f);
    if (!text) return NULL;
    text[n] = '\0';
    /* still running? (the first "pid" is the record's own) */
    const char *pid = strstr(text, "\"pid\":");
    if (!pid || kill((pid_t)atol(pid + 6), 0) < 0) { free(text); return NULL; }
    return text;
}

/* The "socket" of node `node` (0: the first node) in the record, into out. */
static int node_socket(const char *text, int node, char *out, size_t size)
{
    const char *p = strstr(text, "\"nodes\"");
    while (p && (p = strstr(p, "\"id\":")) != NULL) {
        long id = strtol(p + 5, NULL, 10);
        const char *s = strstr(p, "\"socket\":");
        if (!s) return -1;
        if (node == 0 || id == node) {
            s = strchr(s + 9, '"');
            const char *e = s ? strchr(s + 1, '"') : NULL;
            if (!e || (size_t)(e - s - 1) >= size || memchr(s + 1, '\\', (size_t)(e - s - 1))) return -1;
            memcpy(out, s + 1, (size_t)(e - s - 1));
            out[e - s - 1] = '\0';
            return 0;
        }
        p = s;
    }
    return -1;
}

int afc_resolve_socket(const char *socket, int node, char *out, size_t size)
{
    if (socket && node) {
        fprintf(stderr, "give --socket or --node, not both\n");
        return -1;
    }
    if (socket) {
        snprintf(out, size, "%s", socket);
        return 0;
    }
    char path[4096];
    char *text = read_record(path, sizeof path);
    int running = text != NULL;
    int r = running ? node_socket(text, node, out, size) : -1;
    free(text);
    if (r == 0) return 0;
    if (node == 0) {
        snprintf(out, size, "%s", AFC_DEFAULT_SOCKET);
        return 0;
    }
    if (!running) fprintf(stderr, "--node %d: no \"afcluster up\" is running (no %s); start one or give --socket PATH\n", node, path);
    else fprintf(stderr, "--node %d: the running \"afcluster up\" has no node %d\n", node, node);
    return -1;
}
