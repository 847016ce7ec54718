/* dp_state.h - the device plugin's shared state: its GPU table, its endpoints, and the
 * kubelet's v1beta1 messages.
 *
 * Why this exists: the plugin is four files by job (device_plugin.c: endpoints, registration
 * and the watch thread; dp_gpus.c: the GPU table and its health; dp_service.c: the device
 * list and preferred allocations; dp_allocate.c: Allocate), and they share one state, `dp`,
 * defined in dp_gpus.c. Locking: dp.mu guards the GPU table, `gen` and `last`; it is never
 * held while calling into gRPC or alloc_region_make (which takes the registry lock). The
 * endpoint state (dp.res[]) is the watch thread's alone once started. Not a public header:
 * device_plugin.h is the daemon's way in.
 */
#ifndef VGPU_HV_DP_STATE_H
#define VGPU_HV_DP_STATE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include <protobuf-c/protobuf-c.h>

/* protoc-c names the (unused) service stub of the rpc Register `register`, a C keyword: renamed
 * for the generated header only, after every header it includes is in */
#define register register_
#include "deviceplugin.pb-c.h"
#undef register

#include "grpc_server.h"
#include "nvml_monitor.h"
#include "shm_region.h"

#define DP_CONTAINER_SOCKET "/run/vgpu/worker.sock" /* the worker socket inside a container */
#define DP_API_VERSION "v1beta1"
#define DP_MAX_UNITS 2048         /* memory devices listed per GPU at most (message size) */
#define DP_CORE_UNITS 100         /* gpu-cores devices per GPU: 1% each */
#define DP_MAX_CONTAINERS 64      /* container entries in one request */
#define DP_MAX_IDS 65536          /* device IDs in one container entry */
#define DP_ID_LEN 96              /* longest device ID: a uuid (< 48) + "-m" + digits */
#define DP_POLL_MS 200            /* the watch thread's period; streams look for changes as often */
#define DP_REGISTER_MS 5000       /* deadline of one Register call */
#define DP_PAIR_NS 10000000000ull /* see `last`: allocations this close are taken as one pod's */
#define DP_SOCK_LEN 108           /* sizeof(sockaddr_un.sun_path) */

enum { DP_MEM = 0, DP_CORES = 1, DP_NRES };

struct dp_gpu {
    char uuid[VGPU_UUID_LEN]; /* lower case, as the snapshot has it: [a-z0-9-] only */
    int index;                /* NVML index (for logs) */
    int units;                /* gpu-memory devices: floor(total / unit), <= DP_MAX_UNITS */
    int healthy;
};

/* Which file a path names: device, inode and change time. The time tells a file made anew
 * apart from the one before it even when the file system hands out the same inode again. */
struct dp_file {
    int have;
    dev_t dev;
    ino_t ino;
    struct timespec ctim;
};

struct dp_res {
    const char *name;     /* resource name */
    const char *endpoint; /* socket file name in the plugin directory */
    char kind;            /* device ID suffix letter: 'm' / 'c' */
    char path[DP_SOCK_LEN];
    struct gs_server *srv;
    struct dp_file made; /* the socket file this plugin made */
    int registered;      /* with the kubelet now on kubelet.sock */
    int fails;
    uint64_t next_try_ns;   /* next registration attempt */
    uint64_t next_serve_ns; /* next attempt to serve the endpoint after a failure */
};

struct dp_state {
    pthread_mutex_t mu;
    int ngpu;
    struct dp_gpu gpu[NVML_MON_MAX_GPUS];
    uint64_t gen;
    /* The GPU of the latest Allocate of each resource, and when. The kubelet allocates a
     * container's resources one after the other and says nothing of the pod in Allocate; so
     * GetPreferredAllocation of one resource prefers the GPU the other was just given, which
     * keeps a container's memory and cores on the same GPU whenever that GPU fits. */
    struct {
        char uuid[VGPU_UUID_LEN];
        uint64_t ns;
    } last[DP_NRES];
    /* set before the threads start, read-only after */
    struct dp_res res[DP_NRES];
    char kubelet[DP_SOCK_LEN];
    uint64_t unit;
    char lib_dir[256], shm_dir[256], worker_socket[256];
    /* watch thread */
    struct dp_file kubelet_seen; /* kubelet.sock as last seen */
    pthread_t thr;
    atomic_int stop;
    int started;
};
extern struct dp_state dp;

/* --- dp_gpus.c ---------------------------------------------------------------------------- */

/* Devices of resource r on GPU g: its memory units, or DP_CORE_UNITS. */
int dp_res_units(int r, const struct dp_gpu *g);
/* The name NVIDIA's container runtime and CUDA use: "GPU-<hex>" (NVML writes the prefix in
 * upper case and the digits in lower case; the snapshot lowered all of it). */
void dp_nvml_name(const char *uuid, char *out, size_t n);
/* Bring the GPU table up to NVML's snapshot: new GPUs listed, lost ones Unhealthy. */
void dp_refresh_gpus(void);
/* The GPU (its index in dp.gpu) of device `id` of resource r, its unit in *unit; -1 when the
 * ID is not one this plugin lists. dp.mu held. */
int dp_id_parse(int r, const char *id, int *unit);
/* The whole device list of resource r, packed (malloc'ed); the `gen` it shows in *gen. */
uint8_t *dp_list_pack(int r, uint64_t *gen, size_t *len);

#endif
