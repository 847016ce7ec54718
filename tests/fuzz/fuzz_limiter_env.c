/* fuzz_limiter_env.c - libFuzzer harness for the limiter's configuration from the environment
 * (vgpu_config_load, src/limiter/config.c, config_limits.c). The environment is whatever the pod
 * spec says, so every byte of it is untrusted. The input is split at NUL and newline bytes into
 * "NAME=value" strings, which become envp.
 *
 * Invariants: the result is within the documented ranges (entries, indices, percentages in
 * hundredths, ratios, ports, terminated strings); an error always has a message; and, when no
 * error is reported, no limit that was given is lost: each valid CUDA_MEM_LIMIT_<i>,
 * VCUDA_MEMORY_LIMIT and CUDA_CORE_LIMIT_<i> bounds what the limiter enforces for that GPU
 * (the smallest wins, nothing is dropped).
 */
#include "config.h"
#include "fuzz_util.h"
#include "size_parse.h"

#define MAX_LINES 512

/* "0".."15" (one or two digits) -> index, else -1: as the limiter reads a suffix */
static int index_of(const char *s, size_t n)
{
    if (n < 1 || n > 2) return -1;
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v < VGPU_MAX_DEVICES ? v : -1;
}

static void check_entry(const struct vgpu_limit_entry *e, int core)
{
    FUZZ_CHECK(fuzz_terminated(e->uuid, sizeof(e->uuid)) &&
                   fuzz_terminated(e->source, sizeof(e->source)) && e->source[0],
               "entry strings");
    /* -1: by uuid; memory also -2 (VCUDA_MEMORY_LIMIT: every GPU) and -3 (CUDA_MEM_LIMIT: every
     * GPU without a CUDA_MEM_LIMIT_<i>) */
    FUZZ_CHECK(e->index >= (core ? -1 : -3) && e->index < VGPU_MAX_DEVICES, "index %d", e->index);
    if (e->index == -1)
        FUZZ_CHECK(!strncmp(e->uuid, "gpu-", 4) || !strncmp(e->uuid, "mig-", 4),
                   "uuid key '%s' is not normalised", e->uuid);
    if (core)
        FUZZ_CHECK(e->value >= 1 && e->value <= 10000, "core value %llu from %s",
                   (unsigned long long)e->value, e->source);
    else
        FUZZ_CHECK(e->value > 0, "memory value 0 from %s", e->source);
}

/* no valid limit given in envp is lost (only meaningful when cfg reports no error) */
static void check_nothing_dropped(const struct vgpu_config *cfg, char **envp)
{
    static const char mem[] = "CUDA_MEM_LIMIT_", core[] = "CUDA_CORE_LIMIT_";
    char err[300];
    int seen_all = 0;
    for (char **e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        /* a named variable is its first occurrence (getenv); an indexed one counts each time */
        int first_all = !strncmp(*e, "VCUDA_MEMORY_LIMIT=", 19) && !seen_all++;
        if (!eq || !eq[1]) continue;
        const char *value = eq + 1;
        uint64_t bytes;
        double pct;
        if (!strncmp(*e, mem, sizeof(mem) - 1)) {
            int idx = index_of(*e + sizeof(mem) - 1, (size_t)(eq - *e) - (sizeof(mem) - 1));
            if (idx < 0 || vgpu_parse_size(value, &bytes, err, sizeof(err)) || !bytes) continue;
            uint64_t got = vgpu_config_mem_limit(cfg, idx, NULL, NULL);
            FUZZ_CHECK(got <= bytes, "%s is in force as %llu", *e, (unsigned long long)got);
        } else if (!strncmp(*e, core, sizeof(core) - 1)) {
            int idx = index_of(*e + sizeof(core) - 1, (size_t)(eq - *e) - (sizeof(core) - 1));
            if (idx < 0 || vgpu_parse_percent(value, &pct, err, sizeof(err))) continue;
            uint32_t want = (uint32_t)(pct * 100.0 + 0.5), hard, soft;
            if (!want) want = 1;
            vgpu_config_core_limit(cfg, idx, NULL, &hard, &soft);
            /* in force as the ceiling, or, with a larger CUDA_CORE_SOFT_LIMIT (VGPU-Controller's
             * meaning: the GPU's idle time up to the soft limit), as the share under contention */
            FUZZ_CHECK(hard && (hard <= want || (soft && soft <= want)),
                       "%s is in force as %u (soft %u)", *e, hard, soft);
        } else if (first_all) {
            if (vgpu_parse_size(value, &bytes, err, sizeof(err)) || !bytes) continue;
            for (int i = 0; i < VGPU_MAX_DEVICES; i++) {
                uint64_t got = vgpu_config_mem_limit(cfg, i, NULL, NULL);
                /* KB/MB/GB/TB are powers of 1024 here (vcuda-hook's meaning), decimal in
                 * vgpu_parse_size: at most 2^40 / 10^12 (< 1.1) times its reading */
                FUZZ_CHECK(got <= bytes + bytes / 10, "%s is in force for GPU %d as %llu", *e, i,
                           (unsigned long long)got);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct vgpu_config cfg;
    char *text = malloc(size + 1);
    char **envp = malloc(sizeof(char *) * (MAX_LINES + 1));
    if (!text || !envp) abort();
    memcpy(text, data, size);
    text[size] = 0;
    int n = 0;
    char *line = text;
    for (size_t i = 0; i <= size && n < MAX_LINES; i++) {
        if (i == size || text[i] == '\n' || text[i] == 0) {
            text[i] = 0;
            if (*line) envp[n++] = line;
            line = text + i + 1;
        }
    }
    envp[n] = NULL;

    vgpu_config_load(&cfg, envp);

    FUZZ_CHECK(fuzz_terminated(cfg.error_msg, sizeof(cfg.error_msg)), "error_msg");
    FUZZ_CHECK(!cfg.error || cfg.error_msg[0], "an error without a message");
    /* -1: off (VCUDA_LOG_LEVEL=off, VCUDA_LOG_SINK=null) */
    FUZZ_CHECK(cfg.log_level >= -1 && cfg.log_level <= 4, "log level %d", cfg.log_level);
    FUZZ_CHECK(cfg.n_mem >= 0 && cfg.n_mem <= VGPU_CFG_MAX_KEYS, "n_mem %d", cfg.n_mem);
    FUZZ_CHECK(cfg.n_core >= 0 && cfg.n_core <= VGPU_CFG_MAX_KEYS, "n_core %d", cfg.n_core);
    for (int i = 0; i < cfg.n_mem; i++)
        check_entry(&cfg.mem[i], 0);
    for (int i = 0; i < cfg.n_core; i++)
        check_entry(&cfg.core[i], 1);
    for (int i = 0; i < VGPU_MAX_DEVICES; i++) {
        FUZZ_CHECK(cfg.core_soft[i] <= 10000, "soft %u", cfg.core_soft[i]);
        FUZZ_CHECK(cfg.ratio[i] >= 1.0 && cfg.ratio[i] <= 64.0, "ratio %g", cfg.ratio[i]);
        FUZZ_CHECK(cfg.oversold[i] == 0 || cfg.oversold[i] == 1, "oversold %d", cfg.oversold[i]);
    }
    FUZZ_CHECK(cfg.n_visible >= 0 && cfg.n_visible <= VGPU_MAX_DEVICES, "n_visible");
    for (int i = 0; i < cfg.n_visible; i++)
        FUZZ_CHECK(fuzz_terminated(cfg.visible[i], VGPU_UUID_LEN), "visible[%d]", i);
    FUZZ_CHECK(fuzz_terminated(cfg.pod_id, sizeof(cfg.pod_id)) && cfg.pod_id[0] && cfg.pod_source,
               "pod identity");
    FUZZ_CHECK(fuzz_terminated(cfg.shm_dir, sizeof(cfg.shm_dir)) && cfg.shm_dir[0], "shm_dir");
    FUZZ_CHECK(fuzz_terminated(cfg.pod_name, sizeof(cfg.pod_name)) &&
                   fuzz_terminated(cfg.pod_namespace, sizeof(cfg.pod_namespace)) &&
                   fuzz_terminated(cfg.pod_uid, sizeof(cfg.pod_uid)) &&
                   fuzz_terminated(cfg.container, sizeof(cfg.container)),
               "pod names");
    FUZZ_CHECK(fuzz_terminated(cfg.hv_socket, sizeof(cfg.hv_socket)) &&
                   fuzz_terminated(cfg.hv_ip, sizeof(cfg.hv_ip)),
               "daemon address");
    FUZZ_CHECK(cfg.hv_port >= 0 && cfg.hv_port <= 65535, "port %d", cfg.hv_port);
    FUZZ_CHECK(!cfg.hv_socket[0] || cfg.hv_on, "a socket without the daemon client");
    FUZZ_CHECK(cfg.ledger_on == (cfg.n_mem > 0 || cfg.has_core || cfg.hv_on), "ledger_on");
    FUZZ_CHECK(cfg.gate_on == (cfg.has_core || cfg.hv_on), "gate_on");
    FUZZ_CHECK(cfg.has_core || cfg.n_core == 0, "core limits without has_core");
    if (!cfg.error) check_nothing_dropped(&cfg, envp);

    free(envp);
    free(text);
    return 0;
}
