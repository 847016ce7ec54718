/* alloc_map.c - open-addressing hash table of live allocations (see alloc_map.h). */
#include "alloc_map.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "fork_hooks.h"

struct slot {
    uint64_t key;
    uint8_t cls; /* 0 = empty, 0xff = deleted */
    struct vgpu_alloc a;
};

#define DELETED 0xff

static pthread_mutex_t map_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *tab;
static size_t cap, used, live; /* used counts live + deleted */

static size_t hash(int cls, uint64_t key)
{
    uint64_t h = (key ^ ((uint64_t)cls << 56)) * 0x9E3779B97F4A7C15ull;
    return (size_t)(h ^ (h >> 29));
}

static int grow(void)
{
    size_t ncap = cap ? cap * 2 : 1024;
    if (live * 4 < cap) ncap = cap; /* mostly tombstones: rehash in place size */
    struct slot *n = calloc(ncap, sizeof(*n));
    if (!n) return -1;
    for (size_t i = 0; i < cap; i++) {
        if (!tab[i].cls || tab[i].cls == DELETED) continue;
        size_t j = hash(tab[i].cls, tab[i].key) & (ncap - 1);
        while (n[j].cls)
            j = (j + 1) & (ncap - 1);
        n[j] = tab[i];
    }
    free(tab);
    tab = n;
    cap = ncap;
    used = live;
    return 0;
}

static struct slot *find(int cls, uint64_t key)
{
    if (!cap) return NULL;
    for (size_t j = hash(cls, key) & (cap - 1);; j = (j + 1) & (cap - 1)) {
        if (!tab[j].cls) return NULL;
        if (tab[j].cls == cls && tab[j].key == key) return &tab[j];
    }
}

void vgpu_alloc_map_put(int cls, uint64_t key, struct vgpu_alloc a)
{
    pthread_mutex_lock(&map_lock);
    struct slot *s = find(cls, key);
    if (s) {
        s->a = a; /* the driver reused a handle we never saw freed */
    } else if ((used + 1) * 2 <= cap || grow() == 0) {
        size_t j = hash(cls, key) & (cap - 1);
        while (tab[j].cls && tab[j].cls != DELETED)
            j = (j + 1) & (cap - 1);
        if (!tab[j].cls) used++;
        tab[j].cls = (uint8_t)cls;
        tab[j].key = key;
        tab[j].a = a;
        live++;
    }
    pthread_mutex_unlock(&map_lock);
}

int vgpu_alloc_map_take(int cls, uint64_t key, struct vgpu_alloc *out)
{
    pthread_mutex_lock(&map_lock);
    struct slot *s = find(cls, key);
    if (s) {
        *out = s->a;
        s->cls = DELETED;
        live--;
    }
    pthread_mutex_unlock(&map_lock);
    return s != NULL;
}

static void vgpu_alloc_map_lock(void)
{
    pthread_mutex_lock(&map_lock);
}
static void vgpu_alloc_map_unlock(void)
{
    pthread_mutex_unlock(&map_lock);
}

static void vgpu_alloc_map_reset_in_child(void)
{
    pthread_mutex_init(&map_lock, NULL);
    if (tab) memset(tab, 0, cap * sizeof(*tab));
    used = live = 0;
}

__attribute__((constructor)) static void register_fork(void)
{
    vgpu_fork_register(VGPU_FORK_ALLOC_MAP, vgpu_alloc_map_lock, vgpu_alloc_map_unlock,
                       vgpu_alloc_map_reset_in_child);
}
