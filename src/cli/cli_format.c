/* cli_format.c - `vgpu status` as tables an operator can read at a glance.
 *
 * Why this exists: /v1/status is JSON made for programs; this turns it into aligned columns
 * (GPUs, pods with their limits and use, unregistered processes, pods over their memory cap).
 * Missing or null fields print as "-" so a newer or older daemon never breaks the output.
 * Limits are words where they are not a number to read as one: a compute limit or share of 0
 * is the daemon's "none", printed "unlimited" (never "0%", which reads as "nothing allowed"),
 * a memory cap of 0 "no cap"; only a real limit is a percentage or a size.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "size_parse.h"

#define MAX_COLS 12
#define CELL 96

struct table {
    int ncols;
    size_t nrows, cap;
    char (*cells)[MAX_COLS][CELL];
};

static void table_row(struct table *t, const char *const *cols)
{
    if (t->nrows == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        void *p = realloc(t->cells, cap * sizeof(*t->cells));
        if (!p) return;
        t->cells = p;
        t->cap = cap;
    }
    for (int i = 0; i < t->ncols; i++)
        snprintf(t->cells[t->nrows][i], CELL, "%s", cols[i] ? cols[i] : "-");
    t->nrows++;
}

/* Left-aligned columns, two spaces apart, no trailing blanks. */
static void table_print(FILE *out, struct table *t)
{
    size_t w[MAX_COLS] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (int c = 0; c < t->ncols; c++)
            if (strlen(t->cells[r][c]) > w[c]) w[c] = strlen(t->cells[r][c]);
    for (size_t r = 0; r < t->nrows; r++) {
        for (int c = 0; c < t->ncols; c++) {
            if (c == t->ncols - 1)
                fprintf(out, "%s\n", t->cells[r][c]);
            else
                fprintf(out, "%-*s  ", (int)w[c], t->cells[r][c]);
        }
    }
    free(t->cells);
    t->cells = NULL;
    t->nrows = t->cap = 0;
}

static const char *fmt_size(json_t *v, char *buf, size_t len, const char *zero)
{
    if (!json_is_integer(v) && !json_is_real(v)) return "-";
    double d = json_number_value(v);
    if (d < 0) return "-";
    if (d == 0 && zero) return zero;
    return vgpu_format_size((uint64_t)d, buf, len);
}

static const char *fmt_pct(json_t *v, char *buf, size_t len)
{
    if (!json_is_number(v)) return "-";
    double d = json_number_value(v);
    if (fabs(d - round(d)) < 0.05)
        snprintf(buf, len, "%.0f%%", d);
    else
        snprintf(buf, len, "%.1f%%", d);
    return buf;
}

/* A compute limit or share: 0 is "no limit" in the daemon's encoding (docs/hypervisor.md). */
static const char *fmt_limit_pct(json_t *v, char *buf, size_t len)
{
    if (!json_is_number(v)) return "-";
    if (!(json_number_value(v) > 0)) return "unlimited";
    return fmt_pct(v, buf, len);
}

static const char *fmt_int(json_t *v, char *buf, size_t len)
{
    if (!json_is_integer(v)) return json_is_string(v) ? json_string_value(v) : "-";
    snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    return buf;
}

static void print_gpus(FILE *out, json_t *gpus)
{
    fprintf(out, "GPUS\n");
    if (!json_is_array(gpus) || json_array_size(gpus) == 0) {
        fprintf(out, "  (none)\n");
        return;
    }
    struct table t = {.ncols = 4};
    const char *head[] = {"INDEX", "NAME", "MEMORY USED / TOTAL", "UTIL"};
    table_row(&t, head);
    size_t i;
    json_t *g;
    json_array_foreach(gpus, i, g)
    {
        char idx[32], used[32], total[32], mem[80], util[32];
        snprintf(mem, sizeof(mem), "%s / %s",
                 fmt_size(json_object_get(g, "mem_used"), used, sizeof(used), NULL),
                 fmt_size(json_object_get(g, "mem_total"), total, sizeof(total), NULL));
        const char *name = json_string_value(json_object_get(g, "name"));
        const char *row[] = {fmt_int(json_object_get(g, "index"), idx, sizeof(idx)), name, mem,
                             fmt_pct(json_object_get(g, "util"), util, sizeof(util))};
        table_row(&t, row);
    }
    table_print(out, &t);
}

/* A pod without GPUs yet (no process has registered): one row per GPU key of the operator's
 * settings, which it will get when it starts; what no setting says is decided then ("-"). */
static int pending_rows(struct table *t, json_t *p, const char *name, const char *state,
                        const char *workers)
{
    json_t *ops = json_object_get(p, "operator_limits");
    if (!json_is_object(ops) || json_object_size(ops) == 0) return 0;
    const char *key;
    json_t *e;
    json_object_foreach(ops, key, e)
    {
        char cap[32], mem[48], lim[32], core[48], weight[32];
        json_t *m = json_object_get(e, "mem_limit"), *c = json_object_get(e, "core_limit");
        snprintf(mem, sizeof(mem), "- / %s", m ? fmt_size(m, cap, sizeof(cap), "no cap") : "-");
        snprintf(core, sizeof(core), "%s / - / -", c ? fmt_limit_pct(c, lim, sizeof(lim)) : "-");
        json_t *soft = json_object_get(e, "soft");
        const char *mode = json_is_true(soft) ? "soft" : json_is_false(soft) ? "hard" : "-";
        const char *row[] = {name,
                             key,
                             mem,
                             core,
                             fmt_int(json_object_get(e, "weight"), weight, sizeof(weight)),
                             mode,
                             state,
                             workers};
        table_row(t, row);
    }
    return 1;
}

/* One row per pod and GPU; a pod without GPUs yet: its operator settings, else one row of
 * "-". */
static void pod_rows(struct table *t, json_t *p)
{
    const char *name = json_string_value(json_object_get(p, "pod"));
    json_t *susp = json_object_get(p, "suspended");
    const char *state = json_is_true(susp) ? "suspended" : json_is_false(susp) ? "running" : "-";
    char workers[32];
    json_t *wk = json_object_get(p, "workers");
    snprintf(workers, sizeof(workers), "%zu", json_is_array(wk) ? json_array_size(wk) : 0);
    json_t *gpus = json_object_get(p, "gpus");
    size_t n = json_is_array(gpus) ? json_array_size(gpus) : 0;
    if (n == 0 && pending_rows(t, p, name, state, workers)) return;
    for (size_t i = 0; i < n || (i == 0 && n == 0); i++) {
        json_t *g = n ? json_array_get(gpus, i) : NULL;
        char gpu[64], used[32], cap[32], mem[80], lim[32], eff[32], cu[32], core[112], weight[32];
        const char *gpu_s = "-";
        json_t *gi = json_object_get(g, "index");
        if (json_is_integer(gi))
            gpu_s = fmt_int(gi, gpu, sizeof(gpu));
        else if (json_is_string(json_object_get(g, "uuid")))
            gpu_s = json_string_value(json_object_get(g, "uuid"));
        snprintf(mem, sizeof(mem), "%s / %s",
                 fmt_size(json_object_get(g, "mem_used"), used, sizeof(used), NULL),
                 fmt_size(json_object_get(g, "mem_limit"), cap, sizeof(cap), "no cap"));
        /* a clock factor above 1: the pod's GPU time is charged at a full GPU's speed, so it
         * uses less time than its share (docs/compute.md); shown so that is not a mystery */
        json_t *cf = json_object_get(g, "clock_factor");
        char clk[24] = "";
        if (json_is_number(cf) && json_number_value(cf) >= 1.005)
            snprintf(clk, sizeof(clk), " (x%.2f clock)", json_number_value(cf));
        snprintf(core, sizeof(core), "%s / %s / %s%s",
                 fmt_limit_pct(json_object_get(g, "core_limit"), lim, sizeof(lim)),
                 fmt_limit_pct(json_object_get(g, "core_effective"), eff, sizeof(eff)),
                 fmt_pct(json_object_get(g, "core_used"), cu, sizeof(cu)), clk);
        json_t *soft = json_object_get(g, "soft");
        const char *mode = json_is_true(soft) ? "soft" : json_is_false(soft) ? "hard" : "-";
        const char *row[] = {name,
                             gpu_s,
                             g ? mem : "-",
                             g ? core : "-",
                             fmt_int(json_object_get(g, "weight"), weight, sizeof(weight)),
                             mode,
                             state,
                             workers};
        table_row(t, row);
    }
}

void cli_print_pods(FILE *out, json_t *pods)
{
    if (!json_is_array(pods) || json_array_size(pods) == 0) {
        fprintf(out, "  (none)\n");
        return;
    }
    struct table t = {.ncols = 8};
    const char *head[] = {"POD",
                          "GPU",
                          "MEMORY USED / CAP",
                          "COMPUTE LIMIT / EFFECTIVE / USED",
                          "WEIGHT",
                          "MODE",
                          "STATE",
                          "WORKERS"};
    table_row(&t, head);
    size_t i;
    json_t *p;
    json_array_foreach(pods, i, p) pod_rows(&t, p);
    table_print(out, &t);
}

void cli_print_status(FILE *out, json_t *st)
{
    const char *node = json_string_value(json_object_get(st, "node"));
    fprintf(out, "Node: %s\n\n", node ? node : "-");
    print_gpus(out, json_object_get(st, "gpus"));
    fprintf(out, "\nPODS\n");
    cli_print_pods(out, json_object_get(st, "pods"));

    json_t *un = json_object_get(st, "unregistered");
    if (json_is_array(un) && json_array_size(un) > 0) {
        fprintf(out, "\nUNREGISTERED PROCESSES (using a GPU without the limiter)\n");
        struct table t = {.ncols = 3};
        const char *head[] = {"HOST PID", "GPU", "MEMORY USED"};
        table_row(&t, head);
        size_t i;
        json_t *u;
        json_array_foreach(un, i, u)
        {
            char pid[32], gpu[32], mem[32];
            const char *row[] = {fmt_int(json_object_get(u, "host_pid"), pid, sizeof(pid)),
                                 fmt_int(json_object_get(u, "gpu"), gpu, sizeof(gpu)),
                                 fmt_size(json_object_get(u, "mem_used"), mem, sizeof(mem), NULL)};
            table_row(&t, row);
        }
        table_print(out, &t);
    }
    json_t *oc = json_object_get(st, "over_cap");
    if (json_is_array(oc) && json_array_size(oc) > 0) {
        fprintf(out, "\nOVER CAP (using more GPU memory than their cap):");
        size_t i;
        json_t *v;
        json_array_foreach(oc, i, v)
        {
            const char *s = json_string_value(v);
            fprintf(out, "%s %s", i ? "," : "", s ? s : "-");
        }
        fprintf(out, "\n");
    }
}
