/* test_config.c - the limiter reads every seed's spelling of limits, applies the documented
 * precedence, and fails closed (naming the variable) on anything it cannot read. */
#include <unistd.h>

#include "../../src/limiter/config.h"
#include "../../src/limiter/log.h"
#include "unit_case.h"

#define UUID0 "gpu-5e1a0000-0000-0000-0000-000000000001"
#define UUID1 "gpu-5e1a0000-0000-0000-0000-000000000002"

/* nothing configured */
static char *none[] = {"PATH=/bin", NULL};

static void load(struct vgpu_config *c, char **env)
{
    vgpu_config_load(c, env);
}

static void expect_error(char **env, const char *var)
{
    struct vgpu_config c;
    load(&c, env);
    CHECK(c.error != 0);
    if (!strstr(c.error_msg, var)) {
        fprintf(stderr, "error does not name %s: %s\n", var, c.error_msg);
        CHECK(0);
    }
}

UNIT_CASE(nothing_set_means_no_limits_no_error)
{
    struct vgpu_config c;
    /* nothing configured: no limits, no error */
    load(&c, none);
    CHECK(!c.error);
    CHECK(!vgpu_config_has_mem_limits(&c));
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 0, UUID0, NULL), VGPU_UNLIMITED);
}

UNIT_CASE(tf_mem_limit_keyed_by_uuid_any_case)
{
    struct vgpu_config c;
    const char *why = NULL;
    /* the vgpu.rs example: UUID key in any case */
    char *tf[] = {
        "TENSOR_FUSION_CUDA_MEM_LIMIT={\"GPU-5E1A0000-0000-0000-0000-000000000001\": 1073741824}",
        NULL};
    load(&c, tf);
    CHECK(!c.error);
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 0, UUID0, &why), 1ull << 30);
    CHECK_STR(why, "TENSOR_FUSION_CUDA_MEM_LIMIT");
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 1, UUID1, NULL), VGPU_UNLIMITED);
}

UNIT_CASE(tf_mem_limit_index_keys_units_bare_uuid)
{
    struct vgpu_config c;
    /* index keys, strings with units, UUID without the GPU- prefix */
    char *tf2[] = {"TENSOR_FUSION_CUDA_MEM_LIMIT={\"0\": \"4GiB\", "
                   "\"5e1a0000-0000-0000-0000-000000000002\": \"2g\"}",
                   NULL};
    load(&c, tf2);
    CHECK(!c.error);
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 0, UUID0, NULL), 4ull << 30);
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 1, UUID1, NULL), 2ull << 30);
}

UNIT_CASE(smallest_applicable_mem_cap_wins)
{
    struct vgpu_config c;
    const char *why = NULL;
    /* VGPU-Controller and vcuda names; the smallest applicable cap wins */
    char *mix[] = {"CUDA_MEM_LIMIT_0=8GiB",    "CUDA_MEM_LIMIT_1=3g",  "VCUDA_MEMORY_LIMIT=6GiB",
                   "CUDA_MEM_OVERSOLD_1=true", "CUDA_MEM_RATIO_1=1.5", NULL};
    load(&c, mix);
    CHECK(!c.error);
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 0, UUID0, &why), 6ull << 30);
    CHECK_STR(why, "VCUDA_MEMORY_LIMIT");
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 1, UUID1, &why), 3ull << 30);
    CHECK_STR(why, "CUDA_MEM_LIMIT_1");
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 7, NULL, NULL), 6ull << 30);
    CHECK(c.oversold[1] == 1 && c.oversold[0] == 0);
    CHECK(c.ratio[1] == 1.5 && c.ratio[0] == 1.0);
}

UNIT_CASE(vcuda_mem_limit_expression)
{
    struct vgpu_config c;
    /* the vcuda README writes an expression */
    char *vc[] = {"VCUDA_MEMORY_LIMIT=(1024 * 1024 * 1024 * 10)", NULL};
    load(&c, vc);
    CHECK(!c.error);
    CHECK_EQ_U64(vgpu_config_mem_limit(&c, 3, NULL, NULL), 10ull << 30);
}

UNIT_CASE(empty_values_are_unset)
{
    struct vgpu_config c;
    /* empty values are unset */
    char *empty[] = {"CUDA_MEM_LIMIT_0=", "TENSOR_FUSION_CUDA_MEM_LIMIT=", NULL};
    load(&c, empty);
    CHECK(!c.error);
    CHECK(!vgpu_config_has_mem_limits(&c));
}

UNIT_CASE(malformed_mem_limit_refused_naming_variable)
{
    /* malformed values: fail closed, the message names the variable */
    char *e1[] = {"TENSOR_FUSION_CUDA_MEM_LIMIT={\"0\": \"4x\"}", NULL};
    expect_error(e1, "TENSOR_FUSION_CUDA_MEM_LIMIT");
    char *e2[] = {"TENSOR_FUSION_CUDA_MEM_LIMIT={\"0\": 1", NULL};
    expect_error(e2, "TENSOR_FUSION_CUDA_MEM_LIMIT");
    char *e3[] = {"TENSOR_FUSION_CUDA_MEM_LIMIT={\"card-zero\": 1024}", NULL};
    expect_error(e3, "card-zero");
    char *e4[] = {"CUDA_MEM_LIMIT_0=lots", NULL};
    expect_error(e4, "CUDA_MEM_LIMIT_0");
    char *e5[] = {"CUDA_MEM_LIMIT_x=1g", NULL};
    expect_error(e5, "CUDA_MEM_LIMIT_x");
    char *e6[] = {"CUDA_MEM_LIMIT_0=0", NULL};
    expect_error(e6, "CUDA_MEM_LIMIT_0");
    char *e7[] = {"VCUDA_MEMORY_LIMIT=-5", NULL};
    expect_error(e7, "VCUDA_MEMORY_LIMIT");
    char *e8[] = {"CUDA_MEM_OVERSOLD_0=maybe", NULL};
    expect_error(e8, "CUDA_MEM_OVERSOLD_0");
    char *e9[] = {"CUDA_MEM_RATIO_0=0.5", NULL};
    expect_error(e9, "CUDA_MEM_RATIO_0");
    char *e10[] = {"CUDA_MEM_LIMIT_16=1g", NULL};
    expect_error(e10, "CUDA_MEM_LIMIT_16");
    char *e11[] = {"TENSOR_FUSION_CUDA_MEM_LIMIT={\"0\": true}", NULL};
    expect_error(e11, "TENSOR_FUSION_CUDA_MEM_LIMIT");
    /* a good limit next to a bad one still fails closed */
    char *e12[] = {"CUDA_MEM_LIMIT_0=4g", "CUDA_MEM_LIMIT_1=4q", NULL};
    expect_error(e12, "CUDA_MEM_LIMIT_1");
}

UNIT_CASE(core_limits_hard_soft_smallest_hard_wins)
{
    struct vgpu_config c;
    /* compute limits: JSON map (hard), per-card hard and soft, smallest hard wins */
    uint32_t hard, soft;
    char *c1[] = {"TENSOR_FUSION_CUDA_UP_LIMIT={\"0\": 30, "
                  "\"GPU-5E1A0000-0000-0000-0000-000000000002\": \"45.5%\"}",
                  "CUDA_CORE_LIMIT_0=50", "CUDA_CORE_SOFT_LIMIT_0=20", "CUDA_CORE_SOFT_LIMIT_3=10",
                  NULL};
    load(&c, c1);
    CHECK(!c.error);
    CHECK(vgpu_config_has_core_limits(&c));
    vgpu_config_core_limit(&c, 0, UUID0, &hard, &soft);
    CHECK_EQ_INT(hard, 3000);
    CHECK_EQ_INT(soft, 2000);
    vgpu_config_core_limit(&c, 1, UUID1, &hard, &soft);
    CHECK_EQ_INT(hard, 4550);
    CHECK_EQ_INT(soft, 0);
    vgpu_config_core_limit(&c, 3, NULL, &hard, &soft);
    CHECK_EQ_INT(hard, 0);
    CHECK_EQ_INT(soft, 1000);
    load(&c, none);
    CHECK(!vgpu_config_has_core_limits(&c));
    char *ce1[] = {"CUDA_CORE_LIMIT_0=150", NULL};
    expect_error(ce1, "CUDA_CORE_LIMIT_0");
    char *ce2[] = {"TENSOR_FUSION_CUDA_UP_LIMIT={\"0\": \"lots\"}", NULL};
    expect_error(ce2, "TENSOR_FUSION_CUDA_UP_LIMIT");
    /* a soft limit above the hard one is VGPU-Controller's burst ceiling (test_seed_vars.c) */
    char *ce3[] = {"CUDA_CORE_LIMIT_0=20", "CUDA_CORE_SOFT_LIMIT_0=40", NULL};
    load(&c, ce3);
    CHECK(!c.error);
    vgpu_config_core_limit(&c, 0, UUID0, &hard, &soft);
    CHECK_EQ_INT(hard, 4000);
    CHECK_EQ_INT(soft, 2000);
    char *ce4[] = {"CUDA_CORE_SOFT_LIMIT_2=-5", NULL};
    expect_error(ce4, "CUDA_CORE_SOFT_LIMIT_2");
}

UNIT_CASE(daemon_socket_or_ip_port_turns_client_on)
{
    struct vgpu_config c;
    /* the node daemon: a Unix socket, or IP + port; either turns the client, the ledger and the
     * gate on even without limits in the environment */
    load(&c, none);
    CHECK(!c.hv_on && !c.ledger_on && !c.gate_on);
    char *h1[] = {"VGPU_HYPERVISOR_SOCKET=/run/vgpu/worker.sock", NULL};
    load(&c, h1);
    CHECK(!c.error);
    CHECK(c.hv_on && c.ledger_on && c.gate_on);
    CHECK_STR(c.hv_socket, "/run/vgpu/worker.sock");
    CHECK(!vgpu_config_has_core_limits(&c) && !vgpu_config_has_mem_limits(&c));
    char *h2[] = {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=8470", NULL};
    load(&c, h2);
    CHECK(!c.error && c.hv_on && !c.hv_socket[0]);
    CHECK_STR(c.hv_ip, "10.0.0.7");
    CHECK_EQ_INT(c.hv_port, 8470);
    char *h3[] = {"HYPERVISOR_IP=fd00::1", "HYPERVISOR_PORT=1", NULL};
    load(&c, h3);
    CHECK(!c.error && c.hv_port == 1);
    /* the socket wins over TCP; empty values are unset */
    char *h4[] = {"VGPU_HYPERVISOR_SOCKET=@vgpu", "HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=8470",
                  NULL};
    load(&c, h4);
    CHECK(!c.error && c.hv_on);
    CHECK_STR(c.hv_socket, "@vgpu");
    char *h5[] = {"VGPU_HYPERVISOR_SOCKET=", "HYPERVISOR_IP=", "HYPERVISOR_PORT=", NULL};
    load(&c, h5);
    CHECK(!c.error && !c.hv_on);
    /* a memory limit alone: ledger yes, gate no */
    char *h6[] = {"CUDA_MEM_LIMIT_0=1g", NULL};
    load(&c, h6);
    CHECK(c.ledger_on && !c.gate_on && !c.hv_on);
    /* the pod's names for the registration */
    char *h7[] = {"POD_NAME=trainer-0", "POD_NAMESPACE=ml", "VGPU_POD_UID=1234-abcd",
                  "CONTAINER_NAME=main", NULL};
    load(&c, h7);
    CHECK_STR(c.pod_name, "trainer-0");
    CHECK_STR(c.pod_namespace, "ml");
    CHECK_STR(c.pod_uid, "1234-abcd");
    CHECK_STR(c.container, "main");
}

UNIT_CASE(bad_daemon_address_refused_naming_variable)
{
    struct vgpu_config c;
    /* bad values: fail closed, naming the variable; a half-configured daemon fails closed too */
    char *he1[] = {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=http", NULL};
    expect_error(he1, "HYPERVISOR_PORT");
    char *he2[] = {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=65536", NULL};
    expect_error(he2, "HYPERVISOR_PORT");
    char *he3[] = {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=0", NULL};
    expect_error(he3, "HYPERVISOR_PORT");
    char *he4[] = {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=-80", NULL};
    expect_error(he4, "HYPERVISOR_PORT");
    char *he5[] = {"HYPERVISOR_IP=10.0.0.7", "HYPERVISOR_PORT=80x", NULL};
    expect_error(he5, "HYPERVISOR_PORT");
    char *he6[] = {"HYPERVISOR_IP=10.0.0.7", NULL};
    expect_error(he6, "HYPERVISOR_PORT");
    char *he7[] = {"HYPERVISOR_PORT=8470", NULL};
    expect_error(he7, "HYPERVISOR_IP");
    char *he8[] = {"HYPERVISOR_IP=vgpu.local", "HYPERVISOR_PORT=8470", NULL};
    expect_error(he8, "HYPERVISOR_IP");
    char longpath[160] = "VGPU_HYPERVISOR_SOCKET=/";
    memset(longpath + strlen(longpath), 'x', 120);
    char *he9[] = {longpath, NULL};
    expect_error(he9, "VGPU_HYPERVISOR_SOCKET");
    load(&c, he7);
    CHECK(c.hv_on);
}

UNIT_CASE(uuid_normalised_or_refused)
{
    /* UUID normalisation */
    char u[VGPU_UUID_LEN];
    CHECK(vgpu_normalize_uuid("GPU-3430F778-7A25-704C-9090-8B0BB2478114", u, sizeof(u)) == 0);
    CHECK_STR(u, "gpu-3430f778-7a25-704c-9090-8b0bb2478114");
    CHECK(vgpu_normalize_uuid("3430f778-7a25-704c-9090-8b0bb2478114", u, sizeof(u)) == 0);
    CHECK_STR(u, "gpu-3430f778-7a25-704c-9090-8b0bb2478114");
    CHECK(vgpu_normalize_uuid("MIG-3430f778-7a25-704c-9090-8b0bb2478114", u, sizeof(u)) == 0);
    CHECK_STR(u, "mig-3430f778-7a25-704c-9090-8b0bb2478114");
    CHECK(vgpu_normalize_uuid("GPU-3430f778-7a25-704c-9090-8b0bb247811", u, sizeof(u)) == -1);
    CHECK(vgpu_normalize_uuid("GPU-3430f778-7a25-704c-9090-8b0bb2478114x", u, sizeof(u)) == -1);
    CHECK(vgpu_normalize_uuid("0", u, sizeof(u)) == -1);
}

UNIT_CASE(pod_id_from_uid_names_or_cgroup)
{
    struct vgpu_config c;
    /* pod identity */
    char *p1[] = {"VGPU_POD_UID=1234-abcd", "POD_NAME=web", NULL};
    load(&c, p1);
    CHECK_STR(c.pod_id, "uid:1234-abcd");
    CHECK_STR(c.pod_source, "VGPU_POD_UID");
    char *p2[] = {"POD_NAME=web", "POD_NAMESPACE=prod", NULL};
    load(&c, p2);
    CHECK_STR(c.pod_id, "prod/web");
    char *p3[] = {"VGPU_POD_NAME=api", NULL};
    load(&c, p3);
    CHECK_STR(c.pod_id, "default/api");
    load(&c, none);
    CHECK(strcmp(c.pod_id, "host") == 0 || strncmp(c.pod_id, "cg-", 3) == 0 ||
          strncmp(c.pod_id, "ctr-", 4) == 0 || strncmp(c.pod_id, "k8s-", 4) == 0);
    CHECK_STR(c.pod_source, "cgroup");
    /* standalone: this user's own directory; with a daemon: the daemon's, as pods mount it */
    char mine[64];
    snprintf(mine, sizeof(mine), "/dev/shm/vgpu-%u", (unsigned)geteuid());
    CHECK_STR(c.shm_dir, mine);
    char *hv[] = {"VGPU_HYPERVISOR_SOCKET=/run/vgpu/worker.sock", NULL};
    load(&c, hv);
    CHECK_STR(c.shm_dir, "/run/vgpu/shm");
    char *own[] = {"VGPU_HYPERVISOR_SOCKET=/run/vgpu/worker.sock", "VGPU_SHM_DIR=/x/y", NULL};
    load(&c, own);
    CHECK_STR(c.shm_dir, "/x/y");
}

UNIT_CASE(cuda_visible_devices_listed)
{
    struct vgpu_config c;
    /* visible devices for NVML's view */
    char *vis[] = {"CUDA_VISIBLE_DEVICES=2,GPU-5e1a0000-0000-0000-0000-000000000002", NULL};
    load(&c, vis);
    CHECK_EQ_INT(c.n_visible, 2);
    CHECK_STR(c.visible[0], "2");
    CHECK_STR(c.visible[1], UUID1);
}

UNIT_CASE(log_levels_of_three_seeds)
{
    struct vgpu_config c;
    /* log levels of the three seeds */
    char *l1[] = {"VCUDA_LOG_LEVEL=debug", NULL};
    load(&c, l1);
    CHECK_EQ_INT(c.log_level, VGPU_LOG_DEBUG);
    char *l2[] = {"LOGGER_LEVEL=5", NULL};
    load(&c, l2);
    CHECK_EQ_INT(c.log_level, VGPU_LOG_TRACE);
    char *l3[] = {"VGPU_LOG_LEVEL=error", "VCUDA_LOG_LEVEL=trace", NULL};
    load(&c, l3);
    CHECK_EQ_INT(c.log_level, VGPU_LOG_ERROR);
    char *l4[] = {"VGPU_LOG_LEVEL=loud", NULL};
    load(&c, l4);
    CHECK_EQ_INT(c.log_level, VGPU_LOG_WARN);
    CHECK(!c.error); /* a log level is not a limit */
}
