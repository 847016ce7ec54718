/* device_plugin.c - the Kubernetes device plugin: advertise GPU memory and GPU time to the
 * kubelet, check and answer its allocations (see device_plugin.h).
 *
 * Why this exists: see device_plugin.h. How it is built:
 *
 *   - The GPU table and its health are dp_gpus.c's, the device list and preferred allocations
 *     dp_service.c's, Allocate dp_allocate.c's (dp_state.h: the state they share). This file
 *     serves the endpoints, registers them and runs the watch thread.
 *   - The watch thread, every 200 ms: re-reads health once a second; notices a new kubelet
 *     (DIR/kubelet.sock re-created) or an endpoint socket that was removed, then re-creates the
 *     endpoint and registers again; retries a failed registration with backoff.
 *   - Only the kubelet reaches these sockets (a root-only directory on the host, never mounted
 *     into pods), but every field of its requests is checked anyway: counts and lengths are
 *     bounded, every device ID must be one this plugin lists, and nothing it sends is used as a
 *     path or a format.
 *
 * Locking: dp_state.h.
 */
#define _GNU_SOURCE
#include "device_plugin.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dp_allocate.h"
#include "dp_service.h"
#include "dp_state.h"
#include "hv_log.h"

static void file_look(const char *path, int want_socket, struct dp_file *f)
{
    struct stat st;
    memset(f, 0, sizeof(*f));
    if (lstat(path, &st) != 0 || (want_socket && !S_ISSOCK(st.st_mode))) return;
    f->have = 1;
    f->dev = st.st_dev;
    f->ino = st.st_ino;
    f->ctim = st.st_ctim;
}

static int file_same(const struct dp_file *a, const struct dp_file *b)
{
    return a->have == b->have && a->dev == b->dev && a->ino == b->ino &&
           a->ctim.tv_sec == b->ctim.tv_sec && a->ctim.tv_nsec == b->ctim.tv_nsec;
}

/* --- endpoints and registration ------------------------------------------------------------ */

static const char *const method_paths[] = {
    "/v1beta1.DevicePlugin/GetDevicePluginOptions", "/v1beta1.DevicePlugin/ListAndWatch",
    "/v1beta1.DevicePlugin/GetPreferredAllocation", "/v1beta1.DevicePlugin/Allocate",
    "/v1beta1.DevicePlugin/PreStartContainer"};

/* (Re)create the endpoint of resource r. 0 or -1 (logged). */
static int endpoint_start(int r)
{
    struct dp_res *rs = &dp.res[r];
    void *arg = (void *)(intptr_t)r;
    const struct gs_method m[] = {{method_paths[0], dp_on_options, NULL, arg},
                                  {method_paths[1], NULL, dp_on_list_and_watch, arg},
                                  {method_paths[2], dp_on_preferred, NULL, arg},
                                  {method_paths[3], dp_on_allocate, NULL, arg},
                                  {method_paths[4], dp_on_prestart, NULL, arg}};
    gs_server_stop(rs->srv); /* its streams belong to a kubelet that is gone */
    rs->srv = NULL;
    rs->registered = 0;
    rs->fails = 0;
    rs->next_try_ns = 0;
    char err[256];
    rs->srv = gs_server_start(rs->path, m, (int)(sizeof(m) / sizeof(m[0])), err, sizeof(err));
    file_look(rs->path, 1, &rs->made);
    if (!rs->srv || !rs->made.have) {
        hv_logf(HV_ERROR, "device plugin: cannot serve the endpoint (retrying every 5 s)",
                "{s:s, s:s, s:s}", "resource", rs->name, "socket", rs->path, "error",
                rs->srv ? "no socket file" : err);
        rs->next_serve_ns = vgpu_now_ns() + 5000000000ull;
        return -1;
    }
    return 0;
}

static void register_one(int r)
{
    struct dp_res *rs = &dp.res[r];
    V1beta1__DevicePluginOptions o = V1BETA1__DEVICE_PLUGIN_OPTIONS__INIT;
    o.get_preferred_allocation_available = 1;
    V1beta1__RegisterRequest rq = V1BETA1__REGISTER_REQUEST__INIT;
    rq.version = (char *)DP_API_VERSION;
    rq.endpoint = (char *)rs->endpoint;
    rq.resource_name = (char *)rs->name;
    rq.options = &o;
    uint8_t buf[512], *resp = NULL;
    size_t n = v1beta1__register_request__get_packed_size(&rq), rlen = 0;
    if (n > sizeof(buf)) return; /* cannot happen: every field is ours and short */
    v1beta1__register_request__pack(&rq, buf);
    char err[GS_STATUS_MSG_LEN + 128];
    int rc = gs_call_unary(dp.kubelet, "/v1beta1.Registration/Register", buf, n, DP_REGISTER_MS,
                           &resp, &rlen, err, sizeof(err));
    free(resp);
    uint64_t now = vgpu_now_ns();
    if (rc == 0) {
        rs->registered = 1;
        rs->fails = 0;
        hv_logf(HV_INFO, "device plugin: registered with the kubelet", "{s:s, s:s, s:s, s:s}",
                "resource", rs->name, "endpoint", rs->endpoint, "kubelet", dp.kubelet, "version",
                DP_API_VERSION);
        return;
    }
    /* 0.5 s, 1, 2, 4, then every 5 s; the first failure after a success is a warning */
    uint64_t wait_ms = rs->fails >= 4 ? 5000 : 500ull << rs->fails;
    rs->next_try_ns = now + wait_ms * 1000000ull;
    hv_logf(rs->fails ? HV_DEBUG : HV_WARN, "device plugin: registration failed (retrying)",
            "{s:s, s:s, s:s}", "resource", rs->name, "kubelet", dp.kubelet, "error", err);
    rs->fails++;
}

static void *watch_thread(void *arg)
{
    uint64_t next_health = 0;
    while (!atomic_load(&dp.stop)) {
        uint64_t now = vgpu_now_ns();
        if (now >= next_health) {
            dp_refresh_gpus();
            next_health = now + 1000000000ull;
        }
        struct dp_file k;
        file_look(dp.kubelet, 1, &k);
        int have = k.have;
        if (have && !file_same(&k, &dp.kubelet_seen)) {
            /* a kubelet (re)started: it removed every plugin socket; serve anew, register */
            hv_logf(HV_INFO, "device plugin: kubelet socket (re)created", "{s:s}", "kubelet",
                    dp.kubelet);
            for (int r = 0; r < DP_NRES; r++)
                endpoint_start(r);
        }
        if (!have)
            for (int r = 0; r < DP_NRES; r++)
                dp.res[r].registered = 0; /* no kubelet: register with the next one */
        dp.kubelet_seen = k;
        for (int r = 0; r < DP_NRES && !atomic_load(&dp.stop); r++) {
            struct dp_res *rs = &dp.res[r];
            struct dp_file now_file;
            file_look(rs->path, 1, &now_file);
            if (!file_same(&now_file, &rs->made) && vgpu_now_ns() >= rs->next_serve_ns) {
                if (rs->srv)
                    hv_logf(HV_INFO, "device plugin: endpoint socket gone: serving it anew",
                            "{s:s, s:s}", "resource", rs->name, "socket", rs->path);
                endpoint_start(r);
            }
            if (have && rs->srv && !rs->registered && vgpu_now_ns() >= rs->next_try_ns)
                register_one(r);
        }
        struct timespec ts = {0, DP_POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

int device_plugin_start(const struct hv_config *cfg, char *err, size_t errlen)
{
    const char *dir = cfg->device_plugin_dir;
    static const struct {
        const char *name, *endpoint;
        char kind;
    } def[DP_NRES] = {{DP_RESOURCE_MEMORY, "vgpu-memory.sock", 'm'},
                      {DP_RESOURCE_CORES, "vgpu-cores.sock", 'c'}};
    memset(dp.res, 0, sizeof(dp.res));
    for (int r = 0; r < DP_NRES; r++) {
        dp.res[r].name = def[r].name;
        dp.res[r].endpoint = def[r].endpoint;
        dp.res[r].kind = def[r].kind;
        if ((size_t)snprintf(dp.res[r].path, sizeof(dp.res[r].path), "%s/%s", dir,
                             def[r].endpoint) >= sizeof(dp.res[r].path)) {
            snprintf(err, errlen, "--device-plugin-dir %s: too long for a socket path", dir);
            return -1;
        }
    }
    if ((size_t)snprintf(dp.kubelet, sizeof(dp.kubelet), "%s/kubelet.sock", dir) >=
        sizeof(dp.kubelet)) {
        snprintf(err, errlen, "--device-plugin-dir %s: too long for a socket path", dir);
        return -1;
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "--device-plugin-dir %s: %s", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "--device-plugin-dir %s: not a directory", dir);
        return -1;
    }
    dp.unit = cfg->memory_unit ? cfg->memory_unit : 1ull << 30;
    snprintf(dp.lib_dir, sizeof(dp.lib_dir), "%s", cfg->lib_dir);
    snprintf(dp.shm_dir, sizeof(dp.shm_dir), "%s", cfg->shm_dir);
    snprintf(dp.worker_socket, sizeof(dp.worker_socket), "%s", cfg->worker_socket);
    atomic_store(&dp.stop, 0);
    gs_global_init();
    dp_refresh_gpus();
    /* endpoints first, then registration: the kubelet calls back as soon as it is told */
    for (int r = 0; r < DP_NRES; r++)
        if (endpoint_start(r) != 0) {
            snprintf(err, errlen, "device plugin: cannot serve %s", dp.res[r].path);
            for (int q = 0; q <= r; q++) {
                gs_server_stop(dp.res[q].srv);
                dp.res[q].srv = NULL;
            }
            gs_global_shutdown();
            return -1;
        }
    /* the kubelet there now is registered with below, not treated as a restart */
    file_look(dp.kubelet, 1, &dp.kubelet_seen);
    if (pthread_create(&dp.thr, NULL, watch_thread, NULL) != 0) {
        snprintf(err, errlen, "device plugin: cannot start its thread");
        for (int r = 0; r < DP_NRES; r++) {
            gs_server_stop(dp.res[r].srv);
            dp.res[r].srv = NULL;
        }
        gs_global_shutdown();
        return -1;
    }
    dp.started = 1;
    hv_logf(HV_INFO, "device plugin started", "{s:s, s:I, s:s, s:i}", "dir", dir, "memory_unit",
            (json_int_t)dp.unit, "lib_dir", dp.lib_dir, "gpus", dp.ngpu);
    return 0;
}

void device_plugin_stop(void)
{
    if (!dp.started) return;
    atomic_store(&dp.stop, 1);
    pthread_join(dp.thr, NULL);
    for (int r = 0; r < DP_NRES; r++) {
        struct dp_res *rs = &dp.res[r];
        gs_server_stop(rs->srv); /* gRPC removes its socket file */
        rs->srv = NULL;
        struct dp_file f;
        file_look(rs->path, 1, &f);
        if (f.have && file_same(&f, &rs->made)) unlink(rs->path);
    }
    gs_global_shutdown();
    dp.started = 0;
}
