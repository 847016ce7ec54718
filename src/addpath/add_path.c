/* add_path.c - libadd_path.so: adds entries to PATH, LD_PRELOAD and LD_LIBRARY_PATH.
 *
 * Why this exists: a node agent can inject environment variables and one preloaded library
 * into a container, but cannot change its image or entry point, and a plain LD_LIBRARY_PATH=
 * or PATH= from the pod spec would replace the image's own value instead of extending it.
 * Preloaded (LD_PRELOAD), this library's constructor extends the variables of the process it
 * loads into with setenv, so the process and everything it starts see the result:
 *
 *   TF_PATH, TF_LD_PRELOAD, TF_LD_LIBRARY_PATH               append to PATH, LD_PRELOAD, ...
 *   TF_PREPEND_PATH, TF_PREPEND_LD_PRELOAD, TF_PREPEND_LD_LIBRARY_PATH   prepend to them
 *
 * Rules (tests/addpath checks each one):
 *  - a value holds one or more entries separated by ':' (for LD_PRELOAD also ' ', as ld.so
 *    reads it); empty entries are dropped; new entries are written separated by ':';
 *  - an entry already in the variable (or earlier in the same value) is not added again,
 *    appending or prepending, and an entry already there stays where it is: the existing value
 *    is never rewritten, only added to. So a shell started inside a shell, each with the
 *    library, leaves the variables as the first one made them;
 *  - result: prepended entries in the order given, then the existing value byte for byte (an
 *    empty entry in PATH means the current directory: not ours to drop), then appended ones.
 *    Prepend is applied first, so an entry named in both TF_PREPEND_X and TF_X goes first;
 *  - an unset or empty variable becomes just the new entries; with nothing new the variable
 *    is left alone (not created);
 *  - nothing changes in a secure-execution (setuid/setgid) process: the loader has removed
 *    such variables from its environment on purpose.
 * Meant for LD_PRELOAD: the constructor then runs before main, while the process still has one
 * thread (setenv is not thread-safe). On an allocation failure the variable is left unchanged
 * and one line goes to stderr.
 * Depends on glibc (2.17 or newer) only and exports no symbol (see CMakeLists.txt).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

struct entry {
    const char *s; /* points into an environment string; not NUL-terminated at n */
    size_t n;
};

/* A set of entries: open addressing, a power-of-two table at most half full, so lookups stay
 * linear in the total size even for values of tens of thousands of entries. */
struct entry_set {
    struct entry *slot;
    size_t mask;
};

static size_t entry_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return (size_t)(h ^ (h >> 32));
}

/* 1 when added, 0 when already present */
static int set_add(struct entry_set *set, const char *s, size_t n)
{
    size_t i = entry_hash(s, n) & set->mask;
    for (; set->slot[i].s; i = (i + 1) & set->mask)
        if (set->slot[i].n == n && memcmp(set->slot[i].s, s, n) == 0) return 0;
    set->slot[i] = (struct entry){s, n};
    return 1;
}

/* an upper bound on the entries of v */
static size_t count_entries(const char *v, const char *seps)
{
    size_t n = 1;
    for (v = v ? v : ""; *(v += strcspn(v, seps)); v++)
        n++;
    return n;
}

/* Adds the non-empty entries of v not yet in set to out[*n]. */
static void collect(struct entry_set *set, const char *v, const char *seps, struct entry *out,
                    size_t *n)
{
    while (v && *v) {
        size_t len = strcspn(v, seps);
        if (len && set_add(set, v, len) && out) out[(*n)++] = (struct entry){v, len};
        v += len;
        if (*v) v++;
    }
}

static void append_str(char **o, const char *start, const char *s, size_t n)
{
    if (*o != start) *(*o)++ = ':';
    memcpy(*o, s, n);
    *o += n;
}

static void extend(const char *name, const char *seps, const char *prepend_name,
                   const char *append_name)
{
    const char *pre = getenv(prepend_name), *app = getenv(append_name);
    if (!pre && !app) return;
    const char *cur = getenv(name);
    cur = cur ? cur : "";

    size_t cur_len = strlen(cur), n_cur = count_entries(cur, seps);
    size_t n_new = count_entries(pre, seps) + count_entries(app, seps); /* no overflow: each is
                                                             at most a string's length + 1 */
    size_t total = n_cur + n_new, size = 16;
    while (size / 2 < total && size <= SIZE_MAX / 4)
        size *= 2;
    struct entry_set set = {calloc(size, sizeof(struct entry)), size - 1};
    struct entry *add = calloc(n_new, sizeof(struct entry));
    char *value = NULL;
    if (size / 2 < total || !set.slot || !add) goto out_of_memory;

    size_t n_add = 0, n_pre;
    collect(&set, cur, seps, NULL, &n_add);
    collect(&set, pre, seps, add, &n_add);
    n_pre = n_add;
    collect(&set, app, seps, add, &n_add);
    if (n_add == 0) goto out; /* nothing new: leave the variable as it is */

    size_t len = cur_len + 1; /* value, separators and NUL: below 2 x the inputs, no overflow */
    for (size_t i = 0; i < n_add; i++)
        len += add[i].n + 1;
    value = malloc(len);
    if (!value) goto out_of_memory;
    char *o = value;
    for (size_t i = 0; i < n_pre; i++)
        append_str(&o, value, add[i].s, add[i].n);
    if (cur_len) append_str(&o, value, cur, cur_len);
    for (size_t i = n_pre; i < n_add; i++)
        append_str(&o, value, add[i].s, add[i].n);
    *o = '\0';
    if (setenv(name, value, 1) != 0) goto out_of_memory; /* ENOMEM: the name is valid */
    goto out;
out_of_memory:
    fprintf(stderr, "libadd_path: out of memory; %s left unchanged\n", name);
out:
    free(value);
    free(add);
    free(set.slot);
}

__attribute__((constructor)) static void add_path_load(void)
{
    if (getauxval(AT_SECURE)) return;
    extend("PATH", ":", "TF_PREPEND_PATH", "TF_PATH");
    extend("LD_PRELOAD", ": ", "TF_PREPEND_LD_PRELOAD", "TF_LD_PRELOAD");
    extend("LD_LIBRARY_PATH", ":", "TF_PREPEND_LD_LIBRARY_PATH", "TF_LD_LIBRARY_PATH");
}
