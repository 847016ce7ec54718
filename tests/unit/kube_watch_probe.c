/* kube_watch_probe.c - runs the Kubernetes pod watch against a given API URL and prints every
 * callback as one line, so fake_kube_api.py can check what the daemon would be told.
 *
 * Usage: kube_watch_probe API_URL NODE TOKEN_FILE EXPECTED_LINES TIMEOUT_S [CA_FILE]
 * (CA_FILE: the CA that signed an https:// server's certificate, as ca.crt in a cluster)
 * Prints "POD ns/name uid=U deleted=D core=C mem=M weight=W soft=S" ("-" when absent) per
 * callback, then, once EXPECTED_LINES were printed (or at the timeout), stops the watch and
 * prints "STOPPED ms=N" with how long kube_watch_stop took (after PROBE_DELAY_MS, if set, so
 * the stop can land while the watch stream is idle).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "../../src/hypervisor/kube_watch.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int lines;

static void on_pod(const struct kube_pod *p, void *arg)
{
    char core[32] = "-", mem[32] = "-", weight[32] = "-", soft[8] = "-";
    if (p->has_core) snprintf(core, sizeof(core), "%.2f", p->core_limit);
    if (p->has_mem) snprintf(mem, sizeof(mem), "%llu", (unsigned long long)p->mem_limit);
    if (p->has_weight) snprintf(weight, sizeof(weight), "%u", p->weight);
    if (p->has_soft) snprintf(soft, sizeof(soft), "%d", p->soft);
    pthread_mutex_lock(&mu);
    printf("POD %s/%s uid=%s deleted=%d core=%s mem=%s weight=%s soft=%s\n", p->ns, p->name, p->uid,
           p->deleted, core, mem, weight, soft);
    fflush(stdout);
    lines++;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: %s API_URL NODE TOKEN_FILE EXPECTED_LINES TIMEOUT_S [CA_FILE]\n",
                argv[0]);
        return 2;
    }
    struct kube_watch_opts o = {.api_url = argv[1],
                                .node_name = argv[2],
                                .token_file = argv[3],
                                .ca_file = argc == 7 ? argv[6] : NULL};
    int expected = atoi(argv[4]);
    char err[256];
    /* bad options are refused with a message */
    struct kube_watch_opts bad = {.api_url = "ftp://x", .node_name = "n"};
    if (kube_watch_start(&bad, on_pod, NULL, err, sizeof(err)) != NULL) {
        fprintf(stderr, "an ftp:// API URL was accepted\n");
        return 1;
    }
    printf("REFUSED %s\n", err);

    struct kube_watch *w = kube_watch_start(&o, on_pod, NULL, err, sizeof(err));
    if (!w) {
        fprintf(stderr, "kube_watch_start: %s\n", err);
        return 1;
    }
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += atoi(argv[5]);
    pthread_mutex_lock(&mu);
    while (lines < expected && pthread_cond_timedwait(&cv, &mu, &until) == 0) {
    }
    pthread_mutex_unlock(&mu);
    if (getenv("PROBE_DELAY_MS")) usleep(atoi(getenv("PROBE_DELAY_MS")) * 1000);
    double t0 = now_ms();
    kube_watch_stop(w);
    printf("STOPPED ms=%.0f\n", now_ms() - t0);
    return 0;
}
