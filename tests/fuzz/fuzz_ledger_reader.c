/* fuzz_ledger_reader.c - the daemon reading a pod's ledger filled with any bytes
 * (src/hypervisor/ledger_reader.c): the pod writes that file. The input is the file's content
 * (a short file too), through a memfd as the daemon reads it.
 * Invariants: a copy accepted as a ledger has this build's magic, version and size and only
 * EMPTY or READY devices with terminated "gpu-" names, and a device found by name is READY with
 * that name; nothing is read past what was copied. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_util.h"
#include "ledger_reader.h"

static struct vgpu_shm copy;
static struct vgpu_shm_proc procs[VGPU_MAX_PROCS];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0) fd = memfd_create("ledger", MFD_CLOEXEC);
    if (fd < 0) abort();
    /* a ledger-sized file whose bytes are the input, repeated (or the input alone: a short
     * file), written at once */
    static unsigned char file[sizeof(struct vgpu_shm)];
    size_t want = size && data[0] & 1 ? sizeof(file) : size < sizeof(file) ? size : sizeof(file);
    if (size) {
        size_t n = size < want ? size : want;
        memcpy(file, data, n);
        while (n < want) { /* doubling copies */
            size_t k = n < want - n ? n : want - n;
            memcpy(file + n, file, k);
            n += k;
        }
    }
    /* the header of this build, some of the time, so that device checks are reached */
    if (size > 1 && data[1] & 1 && want >= 16) {
        struct {
            uint64_t magic;
            uint32_t version, size;
        } h = {VGPU_SHM_MAGIC, VGPU_SHM_VERSION, sizeof(struct vgpu_shm)};
        memcpy(file, &h, sizeof(h));
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, file, want, 0) != (ssize_t)want) abort();
    char why[160];
    memset(&copy, 0xa5, sizeof(copy));
    if (ledger_read_head(fd, &copy, why, sizeof(why)) == 0) {
        FUZZ_CHECK(copy.magic == VGPU_SHM_MAGIC && copy.version == VGPU_SHM_VERSION &&
                       copy.size == sizeof(struct vgpu_shm),
                   "accepted another layout");
        for (int d = 0; d < VGPU_MAX_DEVICES; d++) {
            uint32_t st = copy.dev[d].state;
            FUZZ_CHECK(st == VGPU_DEV_EMPTY || st == VGPU_DEV_READY, "state %u", st);
            if (st != VGPU_DEV_READY) continue;
            FUZZ_CHECK(fuzz_terminated(copy.dev[d].uuid, VGPU_UUID_LEN) &&
                           !strncmp(copy.dev[d].uuid, "gpu-", 4),
                       "device %d name", d);
            const struct vgpu_shm_dev *v = ledger_dev(&copy, copy.dev[d].uuid);
            FUZZ_CHECK(v && v->state == VGPU_DEV_READY && !strcmp(v->uuid, copy.dev[d].uuid),
                       "device %d not found by its name", d);
        }
        FUZZ_CHECK(!ledger_dev(&copy, "gpu-not-there"), "found a device that is not there");
    } else {
        FUZZ_CHECK(fuzz_terminated(why, sizeof(why)) && why[0], "no reason");
    }
    int r = ledger_read_procs(fd, procs);
    FUZZ_CHECK(r == 0 || want < sizeof(struct vgpu_shm), "a whole ledger's records not read");
    return 0;
}
