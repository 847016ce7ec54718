/* test_seed_vars.c - one case per variable of the three seeds (vgpu.rs, vcuda-hook,
 * VGPU-Controller) and per behaviour the README's configuration table promises: honoured with
 * the seed's meaning, refused naming the variable (failing closed), or noted and ignored. */
#include "../../src/limiter/config.h"
#include "../../src/limiter/log.h"
#include "unit_case.h"

#define U0 "gpu-5e1a0000-0000-0000-0000-000000000001"
#define U1 "gpu-5e1a0000-0000-0000-0000-000000000002"
#define GIB (1ull << 30)

enum what {
    NOTHING,   /* only the error / no-error outcome */
    MEM,       /* vgpu_config_mem_limit(index, uuid) == want */
    MEM_DEV,   /* GPU part of the cap (vgpu_config_mem_split) == want */
    MEM_HOST,  /* host part of the cap == want */
    CORE_HARD, /* hard compute limit, percent x 100 */
    CORE_SOFT, /* soft compute limit, percent x 100 */
    LOG,       /* log level == want (VGPU_LOG_OFF is -1) */
    NOTE,      /* some note contains want_s */
    VISIBLE,   /* n_visible == want and (want_s) visible[index] == want_s */
    HV_PORT,
    POD_ID,
    CONTAINER,
};

struct seed_case {
    const char *name; /* printed when the case fails: says what broke */
    const char *env[5];
    const char *error_var; /* NULL: loads without error; else the error names it */
    enum what what;
    int index;
    long long want;
    const char *want_s;
};

/* One entry a line group, laid out by hand so that each reads as one row. */
/* clang-format off */
/* vgpu.rs */
static const struct seed_case vgpu_rs[] = {
    {"TENSOR_FUSION_CUDA_MEM_LIMIT keyed by UUID caps that GPU",
     {"TENSOR_FUSION_CUDA_MEM_LIMIT={\"GPU-5E1A0000-0000-0000-0000-000000000001\": 1073741824}"},
     NULL, MEM, 0, GIB, NULL},
    {"TENSOR_FUSION_CUDA_MEM_LIMIT value with an exponent is refused",
     {"TENSOR_FUSION_CUDA_MEM_LIMIT={\"0\": 1e9}"}, "TENSOR_FUSION_CUDA_MEM_LIMIT", NOTHING, 0, 0, NULL},
    {"TENSOR_FUSION_CUDA_UP_LIMIT is a hard compute limit",
     {"TENSOR_FUSION_CUDA_UP_LIMIT={\"0\": 20}"}, NULL, CORE_HARD, 0, 2000, NULL},
    {"TENSOR_FUSION_CUDA_UP_LIMIT hexadecimal is refused",
     {"TENSOR_FUSION_CUDA_UP_LIMIT={\"0\": \"0x10\"}"}, "TENSOR_FUSION_CUDA_UP_LIMIT", NOTHING, 0, 0, NULL},
    {"TENSOR_FUSION_CUDA_UP_LIMIT exponent is refused",
     {"TENSOR_FUSION_CUDA_UP_LIMIT={\"0\": 1e1}"}, "TENSOR_FUSION_CUDA_UP_LIMIT", NOTHING, 0, 0, NULL},
    {"HYPERVISOR_IP and HYPERVISOR_PORT reach the daemon",
     {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=8470"}, NULL, HV_PORT, 0, 8470, NULL},
    {"HYPERVISOR_PORT with a leading zero is refused",
     {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=08470"}, "HYPERVISOR_PORT", NOTHING, 0, 0, NULL},
    {"HYPERVISOR_PORT with a blank is refused", {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT= 80"},
     "HYPERVISOR_PORT", NOTHING, 0, 0, NULL},
    {"POD_NAME and POD_NAMESPACE name the pod", {"POD_NAME=web", "POD_NAMESPACE=prod"}, NULL,
     POD_ID, 0, 0, "prod/web"},
    {"CONTAINER_NAME names the container", {"CONTAINER_NAME=main"}, NULL, CONTAINER, 0, 0, "main"},
    {"NVIDIA_VISIBLE_DEVICES with UUIDs maps indices",
     {"NVIDIA_VISIBLE_DEVICES=GPU-5e1a0000-0000-0000-0000-000000000002,"
      "GPU-5e1a0000-0000-0000-0000-000000000001"},
     NULL, VISIBLE, 0, 2, U1},
    {"NVIDIA_VISIBLE_DEVICES=all maps nothing", {"NVIDIA_VISIBLE_DEVICES=all"}, NULL, VISIBLE, 0,
     0, NULL},
    {"NVIDIA_VISIBLE_DEVICES with host indices is noted, not used",
     {"NVIDIA_VISIBLE_DEVICES=3,1"}, NULL, NOTE, 0, 0, "NVIDIA_VISIBLE_DEVICES"},
    {"CUDA_VISIBLE_DEVICES wins over NVIDIA_VISIBLE_DEVICES",
     {"CUDA_VISIBLE_DEVICES=1", "NVIDIA_VISIBLE_DEVICES=GPU-5e1a0000-0000-0000-0000-000000000001"},
     NULL, VISIBLE, 0, 1, "1"},
    {"TF_LOG_LEVEL=debug sets the level", {"TF_LOG_LEVEL=debug"}, NULL, LOG, 0, VGPU_LOG_DEBUG, NULL},
    {"TF_LOG_LEVEL directive is noted and ignored", {"TF_LOG_LEVEL=cuda_limiter=debug"}, NULL,
     NOTE, 0, 0, "TF_LOG_LEVEL"},
    {"TF_ENABLE_LOG=off turns logs off", {"TF_ENABLE_LOG=off", "TF_LOG_LEVEL=info"}, NULL, LOG, 0,
     VGPU_LOG_OFF, NULL},
    {"VGPU_LOG_LEVEL beats TF_ENABLE_LOG=false", {"TF_ENABLE_LOG=false", "VGPU_LOG_LEVEL=info"},
     NULL, LOG, 0, VGPU_LOG_INFO, NULL},
    {"TF_LOG_PATH is noted and ignored", {"TF_LOG_PATH=/tmp/x.log"}, NULL, NOTE, 0, 0,
     "TF_LOG_PATH"},
    {"TENSOR_FUSION_IPC_SERVER_PATH is noted and ignored", {"TENSOR_FUSION_IPC_SERVER_PATH=/x"},
     NULL, NOTE, 0, 0, "TENSOR_FUSION_IPC_SERVER_PATH"},
    {"TENSOR_FUSION_NGPU_PATH is noted and ignored", {"TENSOR_FUSION_NGPU_PATH=/x/ngpu.so"}, NULL,
     NOTE, 0, 0, "TENSOR_FUSION_NGPU_PATH"},
    {"TF_CUDA_LIB_PATH is noted and ignored", {"TF_CUDA_LIB_PATH=/x"}, NULL, NOTE, 0, 0,
     "TF_CUDA_LIB_PATH"},
    {"TF_NVML_LIB_PATH is noted and ignored", {"TF_NVML_LIB_PATH=/x"}, NULL, NOTE, 0, 0,
     "TF_NVML_LIB_PATH"},
    {"ENABLE_CUDA_HOOKS=false does not lift the cap",
     {"ENABLE_CUDA_HOOKS=false", "CUDA_MEM_LIMIT_0=1g"}, NULL, MEM, 0, GIB, NULL},
    {"ENABLE_NVML_HOOKS=false is noted and ignored", {"ENABLE_NVML_HOOKS=false"}, NULL, NOTE, 0, 0,
     "ENABLE_NVML_HOOKS"},
    {"CUDA_LIMITER_MOCK_MODE is noted and ignored", {"CUDA_LIMITER_MOCK_MODE=1"}, NULL, NOTE, 0, 0,
     "CUDA_LIMITER_MOCK_MODE"},
};

/* vcuda-hook */
static const struct seed_case vcuda_hook[] = {
    {"VCUDA_MEMORY_LIMIT GB is a power of 1024 as in vcuda-hook", {"VCUDA_MEMORY_LIMIT=10GB"},
     NULL, MEM, 5, 10 * GIB, NULL},
    {"VCUDA_MEMORY_LIMIT README expression", {"VCUDA_MEMORY_LIMIT=(1024 * 1024 * 1024 * 10)"},
     NULL, MEM, 0, 10 * GIB, NULL},
    {"VCUDA_MEMORY_LIMIT with a leading blank is refused", {"VCUDA_MEMORY_LIMIT= 10g"},
     "VCUDA_MEMORY_LIMIT", NOTHING, 0, 0, NULL},
    {"VCUDA_MEMORY_LIMIT negative is refused", {"VCUDA_MEMORY_LIMIT=-1"}, "VCUDA_MEMORY_LIMIT",
     NOTHING, 0, 0, NULL},
    {"VCUDA_MEMORY_LIMIT overflow is refused", {"VCUDA_MEMORY_LIMIT=99999999999TB"},
     "VCUDA_MEMORY_LIMIT", NOTHING, 0, 0, NULL},
    {"VCUDA_OVER_SUB_RATIO=50% lends half the cap from host memory",
     {"VCUDA_MEMORY_LIMIT=4g", "VCUDA_OVER_SUB_RATIO=50%"}, NULL, MEM_HOST, 0, 2 * GIB, NULL},
    {"VCUDA_OVER_SUB_RATIO keeps the GPU part at the cap",
     {"VCUDA_MEMORY_LIMIT=4g", "VCUDA_OVER_SUB_RATIO=0.5"}, NULL, MEM_DEV, 0, 4 * GIB, NULL},
    {"VCUDA_OVER_SUB_RATIO=0 is refused", {"VCUDA_OVER_SUB_RATIO=0"}, "VCUDA_OVER_SUB_RATIO",
     NOTHING, 0, 0, NULL},
    {"VCUDA_OVER_SUB_RATIO hexadecimal is refused", {"VCUDA_OVER_SUB_RATIO=0x1"},
     "VCUDA_OVER_SUB_RATIO", NOTHING, 0, 0, NULL},
    {"VCUDA_LOG_LEVEL=off", {"VCUDA_LOG_LEVEL=off"}, NULL, LOG, 0, VGPU_LOG_OFF, NULL},
    {"VCUDA_LOG_LEVEL=critical", {"VCUDA_LOG_LEVEL=critical"}, NULL, LOG, 0, VGPU_LOG_ERROR, NULL},
    {"VCUDA_LOG_LEVEL=err", {"VCUDA_LOG_LEVEL=err"}, NULL, LOG, 0, VGPU_LOG_ERROR, NULL},
    {"VCUDA_LOG_LEVEL=warn", {"VCUDA_LOG_LEVEL=warn"}, NULL, LOG, 0, VGPU_LOG_WARN, NULL},
    {"VCUDA_LOG_LEVEL=info", {"VCUDA_LOG_LEVEL=info"}, NULL, LOG, 0, VGPU_LOG_INFO, NULL},
    {"VCUDA_LOG_LEVEL=debug", {"VCUDA_LOG_LEVEL=debug"}, NULL, LOG, 0, VGPU_LOG_DEBUG, NULL},
    {"VCUDA_LOG_LEVEL=trace", {"VCUDA_LOG_LEVEL=trace"}, NULL, LOG, 0, VGPU_LOG_TRACE, NULL},
    {"VCUDA_LOG_LEVEL unknown is noted, level stays", {"VCUDA_LOG_LEVEL=loud"}, NULL, NOTE, 0, 0,
     "VCUDA_LOG_LEVEL"},
    {"VCUDA_LOG_SINK=null turns logs off", {"VCUDA_LOG_SINK=null"}, NULL, LOG, 0, VGPU_LOG_OFF, NULL},
    {"VCUDA_LOG_SINK=file is noted and ignored", {"VCUDA_LOG_SINK=file:/tmp/v.log"}, NULL, NOTE, 0,
     0, "VCUDA_LOG_SINK"},
    {"VCUDA_LOG_FILE is noted and ignored", {"VCUDA_LOG_FILE=/tmp/v.log"}, NULL, NOTE, 0, 0,
     "VCUDA_LOG_FILE"},
    {"VCUDA_DEVICE_NAME is noted and ignored", {"VCUDA_DEVICE_NAME=A100"}, NULL, NOTE, 0, 0,
     "VCUDA_DEVICE_NAME"},
};

/* VGPU-Controller */
static const struct seed_case vgpu_controller[] = {
    {"CUDA_MEM_LIMIT_<i> with VGPU-Controller's units", {"CUDA_MEM_LIMIT_1=2048m"}, NULL, MEM, 1,
     2 * GIB, NULL},
    {"CUDA_MEM_LIMIT applies to a GPU without its own", {"CUDA_MEM_LIMIT=1g"}, NULL, MEM, 3, GIB,
     NULL},
    {"CUDA_MEM_LIMIT_<i> beats CUDA_MEM_LIMIT even when larger",
     {"CUDA_MEM_LIMIT=1g", "CUDA_MEM_LIMIT_0=8g"}, NULL, MEM, 0, 8 * GIB, NULL},
    {"CUDA_MEM_LIMIT_00 is refused", {"CUDA_MEM_LIMIT_00=1g"}, "CUDA_MEM_LIMIT_00", NOTHING, 0, 0, NULL},
    {"CUDA_MEM_LIMIT_0 exponent is refused", {"CUDA_MEM_LIMIT_0=1e3"}, "CUDA_MEM_LIMIT_0",
     NOTHING, 0, 0, NULL},
    {"CUDA_MEM_LIMIT_0 with a leading blank is refused", {"CUDA_MEM_LIMIT_0= 10"},
     "CUDA_MEM_LIMIT_0", NOTHING, 0, 0, NULL},
    {"CUDA_MEM_LIMIT_0 with a trailing blank is refused", {"CUDA_MEM_LIMIT_0=10g "},
     "CUDA_MEM_LIMIT_0", NOTHING, 0, 0, NULL},
    {"CUDA_MEM_LIMIT_0 negative is refused", {"CUDA_MEM_LIMIT_0=-5"}, "CUDA_MEM_LIMIT_0", NOTHING, 0, 0, NULL},
    {"CUDA_MEM_LIMIT_0 overflow is refused", {"CUDA_MEM_LIMIT_0=20000000000T"},
     "CUDA_MEM_LIMIT_0", NOTHING, 0, 0, NULL},
    {"CUDA_MEM_LIMIT bad value is refused", {"CUDA_MEM_LIMIT=lots"}, "CUDA_MEM_LIMIT", NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_0=0x10 is refused", {"CUDA_CORE_LIMIT_0=0x10"}, "CUDA_CORE_LIMIT_0",
     NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_0=10%% is refused", {"CUDA_CORE_LIMIT_0=10%%"}, "CUDA_CORE_LIMIT_0",
     NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_0 with a blank is refused", {"CUDA_CORE_LIMIT_0= 10"}, "CUDA_CORE_LIMIT_0",
     NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_0 exponent is refused", {"CUDA_CORE_LIMIT_0=1e1"}, "CUDA_CORE_LIMIT_0",
     NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_0 negative is refused", {"CUDA_CORE_LIMIT_0=-10"}, "CUDA_CORE_LIMIT_0",
     NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_0=0 is refused (the seed's 'no limit')", {"CUDA_CORE_LIMIT_0=0"},
     "CUDA_CORE_LIMIT_0", NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_+1 is refused", {"CUDA_CORE_LIMIT_+1=10"}, "CUDA_CORE_LIMIT_+1", NOTHING, 0, 0, NULL},
    {"CUDA_CORE_LIMIT_0 percent sign accepted", {"CUDA_CORE_LIMIT_0=12.5%"}, NULL, CORE_HARD, 0,
     1250, NULL},
    {"CUDA_CORE_LIMIT applies to a GPU without its own", {"CUDA_CORE_LIMIT=30"}, NULL, CORE_HARD,
     5, 3000, NULL},
    {"CUDA_CORE_SOFT_LIMIT above the hard one is the idle ceiling",
     {"CUDA_CORE_LIMIT_0=20", "CUDA_CORE_SOFT_LIMIT_0=60"}, NULL, CORE_HARD, 0, 6000, NULL},
    {"CUDA_CORE_SOFT_LIMIT above the hard one keeps the hard share under contention",
     {"CUDA_CORE_LIMIT_0=20", "CUDA_CORE_SOFT_LIMIT_0=60"}, NULL, CORE_SOFT, 0, 2000, NULL},
    {"CUDA_CORE_SOFT_LIMIT below the hard one is the contention share",
     {"CUDA_CORE_LIMIT_0=50", "CUDA_CORE_SOFT_LIMIT_0=20"}, NULL, CORE_SOFT, 0, 2000, NULL},
    {"CUDA_CORE_SOFT_LIMIT applies to a GPU without its own", {"CUDA_CORE_SOFT_LIMIT=15"}, NULL,
     CORE_SOFT, 2, 1500, NULL},
    {"CUDA_CORE_SOFT_LIMIT_0 bad value is refused", {"CUDA_CORE_SOFT_LIMIT_0=half"},
     "CUDA_CORE_SOFT_LIMIT_0", NOTHING, 0, 0, NULL},
    {"CUDA_MEM_RATIO_0=2 keeps half the cap on the GPU",
     {"CUDA_MEM_LIMIT_0=8g", "CUDA_MEM_RATIO_0=2"}, NULL, MEM_DEV, 0, 4 * GIB, NULL},
    {"CUDA_MEM_RATIO_0=2 puts the other half in host memory",
     {"CUDA_MEM_LIMIT_0=8g", "CUDA_MEM_RATIO_0=2"}, NULL, MEM_HOST, 0, 4 * GIB, NULL},
    {"CUDA_MEM_RATIO applies to a GPU without its own", {"CUDA_MEM_LIMIT=8g", "CUDA_MEM_RATIO=4"},
     NULL, MEM_DEV, 1, 2 * GIB, NULL},
    {"CUDA_MEM_RATIO_0 below 1 is refused", {"CUDA_MEM_RATIO_0=0.5"}, "CUDA_MEM_RATIO_0", NOTHING, 0, 0, NULL},
    {"CUDA_MEM_RATIO_0 exponent is refused", {"CUDA_MEM_RATIO_0=2e0"}, "CUDA_MEM_RATIO_0",
     NOTHING, 0, 0, NULL},
    {"CUDA_MEM_OVERSOLD_0 keeps the GPU part at the cap",
     {"CUDA_MEM_LIMIT_0=2g", "CUDA_MEM_OVERSOLD_0=true"}, NULL, MEM_DEV, 0, 2 * GIB, NULL},
    {"CUDA_MEM_OVERSOLD_0 lends the cap again from host memory",
     {"CUDA_MEM_LIMIT_0=2g", "CUDA_MEM_OVERSOLD_0=1"}, NULL, MEM_HOST, 0, 2 * GIB, NULL},
    {"CUDA_MEM_OVERSOLD applies to a GPU without its own",
     {"CUDA_MEM_LIMIT=2g", "CUDA_MEM_OVERSOLD=1"}, NULL, MEM_HOST, 4, 2 * GIB, NULL},
    {"no oversold: no host memory", {"CUDA_MEM_LIMIT_0=2g"}, NULL, MEM_HOST, 0, 0, NULL},
    {"CUDA_MEM_OVERSOLD_0 bad boolean is refused", {"CUDA_MEM_OVERSOLD_0=maybe"},
     "CUDA_MEM_OVERSOLD_0", NOTHING, 0, 0, NULL},
    {"GPU_DEVICES_UUID maps indices to UUIDs",
     {"GPU_DEVICES_UUID=GPU-5e1a0000-0000-0000-0000-000000000001,"
      "GPU-5e1a0000-0000-0000-0000-000000000002"},
     NULL, VISIBLE, 1, 2, U1},
    {"GPU_DEVICES_UUID wins over CUDA_VISIBLE_DEVICES",
     {"CUDA_VISIBLE_DEVICES=0,1", "GPU_DEVICES_UUID=GPU-5e1a0000-0000-0000-0000-000000000002"},
     NULL, VISIBLE, 0, 1, U1},
    {"GPU_DEVICES_UUID with an index is refused", {"GPU_DEVICES_UUID=0,1"}, "GPU_DEVICES_UUID",
     NOTHING, 0, 0, NULL},
    {"LOGGER_LEVEL=0 shows fatal only (errors here)", {"LOGGER_LEVEL=0"}, NULL, LOG, 0,
     VGPU_LOG_ERROR, NULL},
    {"LOGGER_LEVEL=2 shows fatal only (errors here)", {"LOGGER_LEVEL=2"}, NULL, LOG, 0,
     VGPU_LOG_ERROR, NULL},
    {"LOGGER_LEVEL=3 shows infos", {"LOGGER_LEVEL=3"}, NULL, LOG, 0, VGPU_LOG_INFO, NULL},
    {"LOGGER_LEVEL=4 shows verbose (debug)", {"LOGGER_LEVEL=4"}, NULL, LOG, 0, VGPU_LOG_DEBUG, NULL},
    {"LOGGER_LEVEL=5 shows details (trace)", {"LOGGER_LEVEL=5"}, NULL, LOG, 0, VGPU_LOG_TRACE, NULL},
    {"LOGGER_LEVEL=6 is noted, level stays", {"LOGGER_LEVEL=6"}, NULL, LOG, 0, VGPU_LOG_WARN, NULL},
    {"LOGGER_LEVEL=03 is noted", {"LOGGER_LEVEL=03"}, NULL, NOTE, 0, 0, "LOGGER_LEVEL"},
    {"ENV_COMPATIBILITY_MODE is noted and ignored", {"ENV_COMPATIBILITY_MODE=2"}, NULL, NOTE, 0, 0,
     "ENV_COMPATIBILITY_MODE"},
    {"VMEMORY_NODE_ENABLED is noted and ignored", {"VMEMORY_NODE_ENABLED=true"}, NULL, NOTE, 0, 0,
     "VMEMORY_NODE_ENABLED"},
    {"VGPU_POD_UID names the pod", {"VGPU_POD_UID=1234-abcd", "VGPU_POD_NAME=x"}, NULL, POD_ID, 0,
     0, "uid:1234-abcd"},
    {"VGPU_POD_NAME and VGPU_POD_NAMESPACE name the pod",
     {"VGPU_POD_NAME=api", "VGPU_POD_NAMESPACE=ml"}, NULL, POD_ID, 0, 0, "ml/api"},
    {"VGPU_CONTAINER_NAME beats CONTAINER_NAME", {"CONTAINER_NAME=a", "VGPU_CONTAINER_NAME=b"},
     NULL, CONTAINER, 0, 0, "b"},
};

/* ours */
static const struct seed_case ours[] = {
    {"VGPU_LOG_LEVEL beats the seeds' levels", {"VGPU_LOG_LEVEL=error", "VCUDA_LOG_LEVEL=trace"},
     NULL, LOG, 0, VGPU_LOG_ERROR, NULL},
    {"a log level is not a limit: no error", {"VGPU_LOG_LEVEL=loud"}, NULL, LOG, 0, VGPU_LOG_WARN, NULL},
};
/* clang-format on */

static int has_note(const struct vgpu_config *c, const char *text)
{
    for (int i = 0; i < c->n_notes; i++)
        if (strstr(c->notes[i].text, text)) return 1;
    return 0;
}

static int run_case(const struct seed_case *t)
{
    char *env[6] = {0};
    for (int i = 0; i < 5 && t->env[i]; i++)
        env[i] = (char *)t->env[i];
    static struct vgpu_config c;
    vgpu_config_load(&c, env);
    if (t->error_var) return c.error && strstr(c.error_msg, t->error_var);
    if (c.error) {
        fprintf(stderr, "  unexpected error: %s\n", c.error_msg);
        return 0;
    }
    const char *uuid = t->index == 0 ? U0 : t->index == 1 ? U1 : NULL;
    uint64_t dev, host;
    uint32_t hard, soft;
    long long got = 0;
    switch (t->what) {
    case NOTHING:
        return 1;
    case MEM:
        got = (long long)vgpu_config_mem_limit(&c, t->index, uuid, NULL);
        break;
    case MEM_DEV:
    case MEM_HOST:
        vgpu_config_mem_split(&c, t->index, vgpu_config_mem_limit(&c, t->index, uuid, NULL), &dev,
                              &host);
        got = (long long)(t->what == MEM_DEV ? dev : host);
        break;
    case CORE_HARD:
    case CORE_SOFT:
        vgpu_config_core_limit(&c, t->index, uuid, &hard, &soft);
        got = t->what == CORE_HARD ? hard : soft;
        break;
    case LOG:
        got = c.log_level;
        break;
    case NOTE:
        return has_note(&c, t->want_s);
    case VISIBLE:
        if (c.n_visible != t->want) {
            fprintf(stderr, "  n_visible %d, expected %lld\n", c.n_visible, t->want);
            return 0;
        }
        return !t->want_s || strcmp(c.visible[t->index], t->want_s) == 0;
    case HV_PORT:
        got = c.hv_port;
        break;
    case POD_ID:
        return strcmp(c.pod_id, t->want_s) == 0;
    case CONTAINER:
        return strcmp(c.container, t->want_s) == 0;
    }
    if (got != t->want) fprintf(stderr, "  got %lld, expected %lld\n", got, t->want);
    return got == t->want;
}

/* Each table entry names its behaviour; a failing one is printed by that name. */
static void run_table(const struct seed_case *t, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!run_case(&t[i])) {
            fprintf(stderr, "FAILED: %s\n", t[i].name);
            vgpu_test_failures++;
        }
    }
    printf("%zu entries\n", n);
}

#define RUN_TABLE(t) run_table(t, sizeof(t) / sizeof(t[0]))

UNIT_CASE(vgpu_rs_variables_honoured_refused_or_noted)
{
    RUN_TABLE(vgpu_rs);
}

UNIT_CASE(vcuda_hook_variables_honoured_refused_or_noted)
{
    RUN_TABLE(vcuda_hook);
}

UNIT_CASE(vgpu_controller_variables_honoured_refused_or_noted)
{
    RUN_TABLE(vgpu_controller);
}

UNIT_CASE(own_log_level_beats_seeds_and_is_not_a_limit)
{
    RUN_TABLE(ours);
}
