/* test_layout.c - the layouts shared between processes (the pod ledger, the control region,
 * the node region) have the offsets and sizes written down here, and each one's version changes
 * whenever that table does.
 *
 * Why this exists: a limiter and a daemon of different builds must read the same bytes the same
 * way; their only guard is the magic and version in each region. The headers pin every field
 * at compile time (src/common/layout_pin.h); this test prints the same table, so a failure names
 * the field, and ties each region's table to its version: the fingerprint of the expected table
 * is recorded per version, so a table edited without a version bump fails.
 *
 * The expected columns are data written by hand, never computed from offsetof. Cases: "ledger",
 * "control", "node" (one per region, registered separately); no argument runs all three.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "../../src/common/ctl_layout.h"
#include "../../src/common/node_layout.h"
#include "../../src/common/shm_layout.h"
#include "../../src/common/shm_region.h"
#include "../test_util.h"

enum { LEDGER = 1, CONTROL = 2, NODE = 4 };

struct row {
    unsigned regions; /* the regions whose layout contains this struct */
    const char *type;
    const char *field; /* NULL: the row is the size of the whole struct */
    size_t want_off, want_size;
    size_t off, size; /* as this build lays it out */
};

#define FIELD(regions, type, field, off, size)                                                     \
    {                                                                                              \
        (regions), #type, #field, (off), (size), offsetof(struct type, field),                     \
            sizeof(((struct type *)0)->field)                                                      \
    }
#define SIZE(regions, type, size)                                                                  \
    {                                                                                              \
        (regions), #type, NULL, 0, (size), 0, sizeof(struct type)                                  \
    }

/* Every field of every shared struct in declaration order, then the struct's size. */
static const struct row rows[] = {
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, mem_limit, 0, 8),
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, oversold_limit, 8, 8),
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, flags, 16, 4),
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, core_limit, 20, 4),
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, core_soft, 24, 4),
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, core_effective, 28, 4),
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, weight, 32, 4),
    FIELD(LEDGER | CONTROL, vgpu_dev_limits, core_shared, 36, 4),
    SIZE(LEDGER | CONTROL, vgpu_dev_limits, 40),
    FIELD(LEDGER, vgpu_pod_limiter_state, gate_vclock, 0, 8),
    FIELD(LEDGER, vgpu_pod_limiter_state, gate_launches, 8, 8),
    FIELD(LEDGER, vgpu_pod_limiter_state, gate_share, 16, 4),
    FIELD(LEDGER, vgpu_pod_limiter_state, gate_scale, 20, 4),
    FIELD(LEDGER, vgpu_pod_limiter_state, fb_share, 24, 4),
    FIELD(LEDGER, vgpu_pod_limiter_state, fb_ratio, 28, 4),
    FIELD(LEDGER, vgpu_pod_limiter_state, fb_last_ns, 32, 8),
    FIELD(LEDGER, vgpu_pod_limiter_state, fb_charged_ns, 40, 8),
    FIELD(LEDGER, vgpu_pod_limiter_state, fb_modelled_ppm, 48, 8),
    SIZE(LEDGER, vgpu_pod_limiter_state, 56),
    FIELD(LEDGER, vgpu_shm_dev, uuid, 0, 48),
    FIELD(LEDGER, vgpu_shm_dev, state, 48, 4),
    FIELD(LEDGER, vgpu_shm_dev, reserved0, 52, 4),
    FIELD(LEDGER, vgpu_shm_dev, lim, 56, 40),
    FIELD(LEDGER, vgpu_shm_dev, mem_used, 96, 8),
    FIELD(LEDGER, vgpu_shm_dev, mem_peak, 104, 8),
    FIELD(LEDGER, vgpu_shm_dev, oversold_used, 112, 8),
    FIELD(LEDGER, vgpu_shm_dev, total_real, 120, 8),
    FIELD(LEDGER, vgpu_shm_dev, oom_events, 128, 8),
    FIELD(LEDGER, vgpu_shm_dev, gate_charged_ns, 136, 8),
    FIELD(LEDGER, vgpu_shm_dev, gate_waited_ns, 144, 8),
    FIELD(LEDGER, vgpu_shm_dev, gate_dvfs, 152, 4),
    FIELD(LEDGER, vgpu_shm_dev, reserved1, 156, 4),
    FIELD(LEDGER, vgpu_shm_dev, limiter, 160, 56),
    SIZE(LEDGER, vgpu_shm_dev, 216),
    FIELD(LEDGER, vgpu_shm_proc, pid, 0, 4),
    FIELD(LEDGER, vgpu_shm_proc, reserved0, 4, 4),
    FIELD(LEDGER, vgpu_shm_proc, start_time, 8, 8),
    FIELD(LEDGER, vgpu_shm_proc, pidns, 16, 8),
    FIELD(LEDGER, vgpu_shm_proc, heartbeat_ns, 24, 8),
    FIELD(LEDGER, vgpu_shm_proc, host_pid, 32, 4),
    FIELD(LEDGER, vgpu_shm_proc, reserved1, 36, 4),
    FIELD(LEDGER, vgpu_shm_proc, mem, 40, 128),
    FIELD(LEDGER, vgpu_shm_proc, ovh, 168, 128),
    FIELD(LEDGER, vgpu_shm_proc, oversold, 296, 128),
    SIZE(LEDGER, vgpu_shm_proc, 424),
    FIELD(LEDGER, vgpu_shm, magic, 0, 8),
    FIELD(LEDGER, vgpu_shm, version, 8, 4),
    FIELD(LEDGER, vgpu_shm, size, 12, 4),
    FIELD(LEDGER, vgpu_shm, pod_id, 16, 160),
    FIELD(LEDGER, vgpu_shm, lock, 176, 64),
    FIELD(LEDGER, vgpu_shm, last_reap_ns, 240, 8),
    FIELD(LEDGER, vgpu_shm, reaped_procs, 248, 8),
    FIELD(LEDGER, vgpu_shm, reserved, 256, 104),
    FIELD(LEDGER, vgpu_shm, dev, 360, 3456),
    FIELD(LEDGER, vgpu_shm, proc, 3816, 217088),
    SIZE(LEDGER, vgpu_shm, 220904),
    FIELD(CONTROL, vgpu_ctl_dev, uuid, 0, 48),
    FIELD(CONTROL, vgpu_ctl_dev, state, 48, 4),
    FIELD(CONTROL, vgpu_ctl_dev, reserved, 52, 4),
    FIELD(CONTROL, vgpu_ctl_dev, lim, 56, 40),
    SIZE(CONTROL, vgpu_ctl_dev, 96),
    FIELD(CONTROL, vgpu_ctl_dead, host_pid, 0, 4),
    FIELD(CONTROL, vgpu_ctl_dead, reserved, 4, 4),
    FIELD(CONTROL, vgpu_ctl_dead, start_time, 8, 8),
    SIZE(CONTROL, vgpu_ctl_dead, 16),
    FIELD(CONTROL, vgpu_ctl, magic, 0, 8),
    FIELD(CONTROL, vgpu_ctl, version, 8, 4),
    FIELD(CONTROL, vgpu_ctl, size, 12, 4),
    FIELD(CONTROL, vgpu_ctl, pod, 16, 160),
    FIELD(CONTROL, vgpu_ctl, token, 176, 33),
    FIELD(CONTROL, vgpu_ctl, reserved0, 209, 7),
    FIELD(CONTROL, vgpu_ctl, suspended, 216, 4),
    FIELD(CONTROL, vgpu_ctl, state, 220, 4),
    FIELD(CONTROL, vgpu_ctl, managed_ns, 224, 8),
    FIELD(CONTROL, vgpu_ctl, control_seq, 232, 8),
    FIELD(CONTROL, vgpu_ctl, dead_seq, 240, 8),
    FIELD(CONTROL, vgpu_ctl, reserved1, 248, 64),
    FIELD(CONTROL, vgpu_ctl, dead, 312, 1024),
    FIELD(CONTROL, vgpu_ctl, dev, 1336, 1536),
    SIZE(CONTROL, vgpu_ctl, 2872),
    FIELD(NODE, vgpu_node_gpu, uuid, 0, 48),
    FIELD(NODE, vgpu_node_gpu, util, 48, 4),
    FIELD(NODE, vgpu_node_gpu, reserved, 52, 4),
    FIELD(NODE, vgpu_node_gpu, mem_used, 56, 8),
    FIELD(NODE, vgpu_node_gpu, mem_total, 64, 8),
    SIZE(NODE, vgpu_node_gpu, 72),
    FIELD(NODE, vgpu_node_proc, host_pid, 0, 4),
    FIELD(NODE, vgpu_node_proc, gpu, 4, 4),
    FIELD(NODE, vgpu_node_proc, sm_util, 8, 4),
    FIELD(NODE, vgpu_node_proc, reserved, 12, 4),
    FIELD(NODE, vgpu_node_proc, mem, 16, 8),
    SIZE(NODE, vgpu_node_proc, 24),
    FIELD(NODE, vgpu_node_shm, magic, 0, 8),
    FIELD(NODE, vgpu_node_shm, version, 8, 4),
    FIELD(NODE, vgpu_node_shm, size, 12, 4),
    FIELD(NODE, vgpu_node_shm, seq, 16, 8),
    FIELD(NODE, vgpu_node_shm, updated_ns, 24, 8),
    FIELD(NODE, vgpu_node_shm, daemon_pid, 32, 4),
    FIELD(NODE, vgpu_node_shm, ngpu, 36, 4),
    FIELD(NODE, vgpu_node_shm, nproc, 40, 4),
    FIELD(NODE, vgpu_node_shm, reserved, 44, 4),
    FIELD(NODE, vgpu_node_shm, daemon_pidns, 48, 8),
    FIELD(NODE, vgpu_node_shm, gpu, 56, 1152),
    FIELD(NODE, vgpu_node_shm, proc, 1208, 24576),
    SIZE(NODE, vgpu_node_shm, 25784),
};

/* The fingerprint of each region's expected table, per version. A change of the table needs a
 * new version (VGPU_*_VERSION) and a new line here; old lines stay as the record. */
static const struct known {
    unsigned region;
    unsigned version;
    unsigned long long fingerprint;
} known[] = {
    {LEDGER, 5, 0x9e32637cee9aff71ull},
    {LEDGER, 6, 0x81defb236b5df966ull}, /* vgpu_dev_limits.core_shared */
    {CONTROL, 1, 0x40e5a10cbc037f2full},
    {CONTROL, 2, 0x481859d3cf54445aull}, /* vgpu_dev_limits.core_shared */
    {NODE, 1, 0xf62ce6e10300ade3ull},
};

static const struct region {
    const char *name;
    unsigned bit;
    unsigned version;
} regions[] = {
    {"ledger", LEDGER, VGPU_SHM_VERSION},
    {"control", CONTROL, VGPU_CTL_VERSION},
    {"node", NODE, VGPU_NODE_VERSION},
};

/* FNV-1a over "type.field@off+size;" of the expected rows of one region. */
static unsigned long long fingerprint(unsigned bit)
{
    unsigned long long h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        if (!(rows[i].regions & bit)) continue;
        char line[160];
        int n = snprintf(line, sizeof(line), "%s.%s@%zu+%zu;", rows[i].type,
                         rows[i].field ? rows[i].field : "", rows[i].want_off, rows[i].want_size);
        h ^= vgpu_fnv1a64(line, (size_t)n);
        h *= 1099511628211ull;
    }
    return h;
}

static void check_region(const struct region *r)
{
    printf("%s (version %u)\n%-26s %-18s %8s %8s\n", r->name, r->version, "struct", "field",
           "offset", "size");
    size_t next = 0; /* where the next field of the current struct must start */
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const struct row *w = &rows[i];
        if (!(w->regions & r->bit)) continue;
        printf("%-26s %-18s %8zu %8zu\n", w->type, w->field ? w->field : "(size)", w->off, w->size);
        if (w->off != w->want_off || w->size != w->want_size) {
            fprintf(stderr, "%s.%s: expected offset %zu size %zu, this build has %zu %zu\n",
                    w->type, w->field ? w->field : "(size)", w->want_off, w->want_size, w->off,
                    w->size);
            CHECK(!"a field moved: see src/common/layout_pin.h");
        }
        /* the rows of a struct tile it without gaps, so no field can be left out of the table */
        if (w->field) {
            if (w->want_off != next) {
                fprintf(stderr, "%s.%s: starts at %zu, the field before ends at %zu\n", w->type,
                        w->field, w->want_off, next);
                CHECK(!"the table leaves a gap or an overlap");
            }
            next = w->want_off + w->want_size;
        } else {
            if (next != w->want_size) {
                fprintf(stderr, "%s: the fields end at %zu, the struct is %zu bytes\n", w->type,
                        next, w->want_size);
                CHECK(!"the table does not cover the struct");
            }
            next = 0;
        }
    }
    unsigned long long fp = fingerprint(r->bit);
    const struct known *k = NULL;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (known[i].region == r->bit && known[i].version == r->version) k = &known[i];
    printf("fingerprint 0x%016llx\n\n", fp);
    if (!k || k->fingerprint != fp) {
        fprintf(stderr,
                "%s: the table of version %u has fingerprint 0x%016llx, recorded %s: a layout "
                "change needs a new version and a new line in known[]\n",
                r->name, r->version, fp, k ? "another" : "none");
        CHECK(!"layout changed without a version bump");
    }
}

int main(int argc, char **argv)
{
    int ran = 0;
    for (size_t i = 0; i < sizeof(regions) / sizeof(regions[0]); i++) {
        if (argc > 1 && strcmp(argv[1], regions[i].name) != 0) continue;
        check_region(&regions[i]);
        ran++;
    }
    if (!ran) {
        fprintf(stderr, "test_layout: unknown case '%s' (ledger, control, node)\n", argv[1]);
        return 2;
    }
    TEST_MAIN_END();
}
