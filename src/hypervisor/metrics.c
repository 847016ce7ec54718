/* metrics.c - Prometheus text format 0.0.4 for GET /metrics.
 *
 * Why this exists: see metrics.h. Each family is written once with its HELP and TYPE lines and
 * then all of its samples, as the format requires; label values are escaped (\\, \", \n).
 */
#define _GNU_SOURCE
#include "metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "http_server.h"
#include "nvml_monitor.h"
#include "registry.h"
#include "tick.h"

static void esc(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\\\", f);
        else if (*s == '"')
            fputs("\\\"", f);
        else if (*s == '\n')
            fputs("\\n", f);
        else
            fputc(*s, f);
    }
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void pod_labels(FILE *f, const struct hv_pod *p)
{
    fputs("namespace=\"", f);
    esc(f, p->ns);
    fputs("\",pod=\"", f);
    esc(f, p->name);
    fputc('"', f);
}

enum {
    PG_MEM_LIMIT,
    PG_MEM_USED,
    PG_CORE_LIMIT,
    PG_CORE_EFF,
    PG_CORE_USED,
    PG_WEIGHT,
    PG_NVML_MEM,
    PG_GPU_SECONDS,
    PG_WAIT_SECONDS,
    PG_CLOCK_FACTOR,
    PG_SHARED_FACTOR
};

static double pod_gpu_value(const struct hv_pod_gpu *g, int which)
{
    switch (which) {
    case PG_MEM_LIMIT:
        return (double)g->mem;
    case PG_MEM_USED:
        return (double)g->mem_used;
    case PG_CORE_LIMIT:
        return g->core;
    case PG_CORE_EFF:
        return g->effective / 100.0;
    case PG_CORE_USED:
        return g->used_avg / 100.0;
    case PG_WEIGHT:
        return g->weight;
    case PG_GPU_SECONDS:
        return (double)g->last_charged / 1e9;
    case PG_WAIT_SECONDS:
        return (double)g->last_waited / 1e9;
    case PG_CLOCK_FACTOR:
        return hv_clock_factor(g);
    case PG_SHARED_FACTOR:
        return g->shared > 1024 ? g->shared / 1024.0 : 1.0;
    default:
        return (double)g->nvml_mem;
    }
}

/* Per GPU, as NVML reports it (s may be NULL: no families' samples). */
static void render_gpus(FILE *f, const struct nvml_snapshot *s)
{
    static const struct {
        const char *name, *help;
    } gm[] = {
        {"vgpu_gpu_memory_total_bytes", "GPU memory as NVML reports it"},
        {"vgpu_gpu_memory_used_bytes", "GPU memory in use as NVML reports it"},
        {"vgpu_gpu_utilization_percent", "GPU busy percentage as NVML reports it"},
    };
    for (int m = 0; m < 3; m++) {
        family(f, gm[m].name, "gauge", gm[m].help);
        for (int i = 0; s && i < s->ngpu; i++) {
            const struct nvml_gpu *g = &s->gpu[i];
            double v = m == 0   ? (double)g->mem_total
                       : m == 1 ? (double)g->mem_used
                                : g->util_x100 / 100.0;
            fprintf(f, "%s{gpu=\"%d\",uuid=\"", gm[m].name, g->index);
            esc(f, g->uuid);
            fprintf(f, "\"} %.15g\n", v);
        }
    }
}

/* Workers, commands and the per-pod families. Registry lock held. */
static void render_pods(FILE *f)
{
    family(f, "vgpu_workers", "gauge", "registered worker processes");
    fprintf(f, "vgpu_workers %d\n", hv_reg.nworkers);
    family(f, "vgpu_commands_total", "counter", "commands sent to workers since start");
    fprintf(f, "vgpu_commands_total %llu\n", (unsigned long long)hv_reg.commands);

    static const struct {
        const char *name, *help;
    } pm[] = {
        {"vgpu_pod_workers", "registered workers of the pod"},
        {"vgpu_pod_suspended", "1 while the pod is suspended"},
        {"vgpu_pod_over_cap", "1 while NVML shows the pod's processes above its memory cap"},
    };
    for (int m = 0; m < 3; m++) {
        family(f, pm[m].name, "gauge", pm[m].help);
        for (const struct hv_pod *p = hv_reg.pods; p; p = p->next) {
            fprintf(f, "%s{", pm[m].name);
            pod_labels(f, p);
            fprintf(f, "} %d\n", m == 0 ? p->nworkers : m == 1 ? p->suspended : p->over_cap);
        }
    }
}

/* Each pod's figures on each of its GPUs. Registry lock held. */
static void render_pod_gpus(FILE *f)
{
    static const struct {
        const char *name, *type, *help;
        int which;
    } gpm[] = {
        {"vgpu_pod_memory_limit_bytes", "gauge", "memory cap of the pod on the GPU (0 = none)",
         PG_MEM_LIMIT},
        {"vgpu_pod_memory_used_bytes", "gauge", "memory the pod's limiter has charged",
         PG_MEM_USED},
        {"vgpu_pod_nvml_memory_bytes", "gauge",
         "memory NVML shows for the pod's registered processes", PG_NVML_MEM},
        {"vgpu_pod_core_limit_percent", "gauge", "compute limit of the pod (0 = none)",
         PG_CORE_LIMIT},
        {"vgpu_pod_core_effective_percent", "gauge", "compute share the pod's gate enforces now",
         PG_CORE_EFF},
        {"vgpu_pod_core_used_percent", "gauge",
         "compute share the pod used (its charged GPU time), over about the last second",
         PG_CORE_USED},
        {"vgpu_pod_weight", "gauge", "scheduling weight of the pod", PG_WEIGHT},
        {"vgpu_pod_gpu_seconds_total", "counter",
         "GPU time charged to the pod since its region was created (the gate's measured costs)",
         PG_GPU_SECONDS},
        {"vgpu_pod_throttled_seconds_total", "counter",
         "time the pod's submitting threads waited at its compute gate", PG_WAIT_SECONDS},
        {"vgpu_pod_clock_factor", "gauge",
         "how much faster than on a full GPU the pod's work runs at the clock now; its GPU time "
         "is charged times this while limited (1 = the GPU would not clock down when full)",
         PG_CLOCK_FACTOR},
        {"vgpu_pod_shared_factor", "gauge",
         "what time-slicing the GPU with other limited pods costs beyond the pods' charges: their "
         "GPU time is charged times this (1 = alone, or no such cost)",
         PG_SHARED_FACTOR},
    };
    for (size_t m = 0; m < sizeof(gpm) / sizeof(gpm[0]); m++) {
        family(f, gpm[m].name, gpm[m].type, gpm[m].help);
        for (const struct hv_pod *p = hv_reg.pods; p; p = p->next)
            for (int i = 0; i < p->ngpu; i++) {
                fprintf(f, "%s{", gpm[m].name);
                pod_labels(f, p);
                fprintf(f, ",gpu=\"%d\",uuid=\"", p->gpu[i].index);
                esc(f, p->gpu[i].uuid);
                fprintf(f, "\"} %.15g\n", pod_gpu_value(&p->gpu[i], gpm[m].which));
            }
    }
}

/* The backstop: processes on the GPUs that no worker registered. Registry lock held. */
static void render_unregistered(FILE *f, const struct nvml_snapshot *s)
{
    family(f, "vgpu_unregistered_processes", "gauge",
           "processes NVML shows on the GPU that no worker registered");
    for (int i = 0; s && i < s->ngpu; i++) {
        int n = 0;
        for (int k = 0; k < hv_reg.nunreg; k++)
            n += hv_reg.unreg[k].gpu == s->gpu[i].index;
        fprintf(f, "vgpu_unregistered_processes{gpu=\"%d\"} %d\n", s->gpu[i].index, n);
    }
    family(f, "vgpu_unregistered_process_memory_bytes", "gauge",
           "GPU memory of a process no worker registered");
    for (int k = 0; k < hv_reg.nunreg; k++)
        fprintf(f, "vgpu_unregistered_process_memory_bytes{gpu=\"%d\",pid=\"%d\"} %llu\n",
                hv_reg.unreg[k].gpu, (int)hv_reg.unreg[k].host_pid,
                (unsigned long long)hv_reg.unreg[k].mem);
}

/* The HTTP listeners' connections (http_server.h). */
static void render_http(FILE *f)
{
    struct http_server_stats hs;
    http_server_stats(&hs);
    static const char *const listener[] = {"operator", "worker", "tcp"};
    family(f, "vgpu_http_connections_open", "gauge", "open HTTP connections per listener");
    for (int k = 0; k < 3; k++)
        fprintf(f, "vgpu_http_connections_open{listener=\"%s\"} %u\n", listener[k], hs.open[k]);
    family(f, "vgpu_http_refused_total", "counter",
           "connections answered 503 over max_connections or max_connections_per_pod");
    for (int k = 0; k < 3; k++)
        fprintf(f, "vgpu_http_refused_total{listener=\"%s\"} %llu\n", listener[k], hs.refused[k]);
    family(f, "vgpu_http_deadline_cut_total", "counter",
           "connections cut for not delivering a request within request_timeout_ms");
    for (int k = 0; k < 3; k++)
        fprintf(f, "vgpu_http_deadline_cut_total{listener=\"%s\"} %llu\n", listener[k],
                hs.deadline_cut[k]);
}

char *metrics_render(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f) return NULL;
    struct nvml_snapshot *s = nvml_snapshot_get();

    family(f, "vgpu_up", "gauge", "1 while the daemon serves");
    fputs("vgpu_up 1\n", f);
    family(f, "vgpu_nvml_available", "gauge", "1 when NVML could be loaded and sampled");
    fprintf(f, "vgpu_nvml_available %d\n", s && s->ok);
    /* the daemon's own cost, which an operator watches with many workers on a node */
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        family(f, "process_cpu_seconds_total", "counter", "CPU time of the daemon (user + system)");
        fprintf(f, "process_cpu_seconds_total %.3f\n",
                (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
                    (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    }
    uint64_t nvml_ns, pods_ns;
    tick_cpu_ns(&nvml_ns, &pods_ns);
    family(f, "vgpu_tick_cpu_seconds_total", "counter",
           "CPU time of the tick thread: its NVML passes, and the rest (pods, scheduling)");
    fprintf(f, "vgpu_tick_cpu_seconds_total{part=\"nvml\"} %.6f\n", nvml_ns / 1e9);
    fprintf(f, "vgpu_tick_cpu_seconds_total{part=\"pods\"} %.6f\n", pods_ns / 1e9);
    if (s && s->ok) {
        family(f, "vgpu_nvml_sample_seconds", "gauge", "how long the last NVML pass took");
        fprintf(f, "vgpu_nvml_sample_seconds %.6f\n", s->pass_ns / 1e9);
        family(f, "vgpu_nvml_call_seconds", "gauge", "of the last NVML pass, in each kind of call");
        for (int c = 0; c < NVML_CALLS; c++)
            fprintf(f, "vgpu_nvml_call_seconds{call=\"%s\"} %.6f\n", nvml_call_names[c],
                    s->call_ns[c] / 1e9);
    }
    render_gpus(f, s);
    registry_lock();
    render_pods(f);
    render_pod_gpus(f);
    render_unregistered(f, s);
    registry_unlock();
    render_http(f);
    free(s);
    fclose(f);
    return text;
}
