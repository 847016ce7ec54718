/* cli_set.c - `vgpu set` options checked here, before anything is sent.
 *
 * Why this exists: a typo in a limit should be caught on the operator's terminal with a
 * message naming the option, not become a 400 from the daemon or, worse, a different limit.
 * Sizes and percentages use the same parser as the limiter and daemon (src/common).
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "size_parse.h"

static int name_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max) return 0;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '.' && s[i] != '_') return 0;
    return 1;
}

int cli_pod_arg(const char *arg, char *ns, size_t nslen, char *name, size_t namelen)
{
    const char *slash = arg ? strchr(arg, '/') : NULL;
    if (!slash || !name_ok(arg, (size_t)(slash - arg), 63) ||
        !name_ok(slash + 1, strlen(slash + 1), 253) || slash - arg >= (long)nslen ||
        strlen(slash + 1) >= namelen) {
        fprintf(stderr, "vgpu: '%s' is not a pod: expected NAMESPACE/NAME\n", arg ? arg : "");
        return -1;
    }
    memcpy(ns, arg, (size_t)(slash - arg));
    ns[slash - arg] = 0;
    memcpy(name, slash + 1, strlen(slash + 1) + 1);
    return 0;
}

/* The value of option argv[*i] ("--opt VALUE" or "--opt=VALUE"), or NULL after a message. */
static const char *opt_value(int argc, char **argv, int *i, const char *opt)
{
    size_t n = strlen(opt);
    if (argv[*i][n] == '=') return argv[*i] + n + 1;
    if (*i + 1 >= argc) {
        fprintf(stderr, "vgpu: %s needs a value\n", opt);
        return NULL;
    }
    return argv[++*i];
}

static int is_opt(const char *arg, const char *opt)
{
    size_t n = strlen(opt);
    return strncmp(arg, opt, n) == 0 && (arg[n] == 0 || arg[n] == '=');
}

static json_t *gpu_value(const char *v)
{
    if (strcmp(v, "all") == 0) return json_string("all");
    if (*v && strspn(v, "0123456789") == strlen(v) && strlen(v) <= 4)
        return json_integer(strtol(v, NULL, 10));
    if ((strncasecmp(v, "GPU-", 4) == 0 || strncasecmp(v, "MIG-", 4) == 0) && strlen(v) > 4 &&
        strlen(v) < 128 && !strpbrk(v, " \t/\"\\"))
        return json_string(v);
    fprintf(stderr, "vgpu: --gpu: '%s' is not a GPU index, a GPU UUID (GPU-...) or 'all'\n", v);
    return NULL;
}

int cli_set_body(int argc, char **argv, json_t **out)
{
    json_t *body = json_object();
    int soft = -1, changes = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        if (is_opt(a, "--gpu")) {
            if (!(v = opt_value(argc, argv, &i, "--gpu"))) goto bad;
            json_t *g = gpu_value(v);
            if (!g) goto bad;
            json_object_set_new(body, "gpu", g);
        } else if (is_opt(a, "--core-limit")) {
            if (!(v = opt_value(argc, argv, &i, "--core-limit"))) goto bad;
            double pct;
            char err[256];
            if (vgpu_parse_percent(v, &pct, err, sizeof(err)) != 0) {
                fprintf(stderr, "vgpu: --core-limit: '%s' is not a percentage in (0, 100]\n", v);
                goto bad;
            }
            json_object_set_new(body, "core_limit", json_real(pct));
            changes++;
        } else if (is_opt(a, "--mem-limit")) {
            if (!(v = opt_value(argc, argv, &i, "--mem-limit"))) goto bad;
            uint64_t bytes = 0;
            char err[256];
            if (strcasecmp(v, "none") != 0 && strcasecmp(v, "unlimited") != 0 &&
                vgpu_parse_size(v, &bytes, err, sizeof(err)) != 0) {
                fprintf(stderr,
                        "vgpu: --mem-limit: '%s' is not a size (e.g. 4GiB, 512MiB; 0 or none = "
                        "no cap): %s\n",
                        v, err);
                goto bad;
            }
            if (bytes > (uint64_t)INT64_MAX) {
                fprintf(stderr, "vgpu: --mem-limit: '%s' is too large\n", v);
                goto bad;
            }
            json_object_set_new(body, "mem_limit", json_integer((json_int_t)bytes));
            changes++;
        } else if (is_opt(a, "--weight")) {
            if (!(v = opt_value(argc, argv, &i, "--weight"))) goto bad;
            char *end = NULL;
            errno = 0;
            long w = strtol(v, &end, 10);
            if (errno || end == v || *end || w < 1 || w > 10000 || !isdigit((unsigned char)*v)) {
                fprintf(stderr, "vgpu: --weight: '%s' is not an integer in 1..10000\n", v);
                goto bad;
            }
            json_object_set_new(body, "weight", json_integer(w));
            changes++;
        } else if (strcmp(a, "--soft") == 0 || strcmp(a, "--hard") == 0) {
            int s = strcmp(a, "--soft") == 0;
            if (soft >= 0 && soft != s) {
                fprintf(stderr, "vgpu: --soft and --hard cannot both be given\n");
                goto bad;
            }
            soft = s;
            json_object_set_new(body, "soft", json_boolean(s));
            changes++;
        } else {
            fprintf(stderr, "vgpu set: unknown argument '%s' (see vgpu --help)\n", a);
            goto bad;
        }
    }
    if (!changes) {
        fprintf(stderr, "vgpu set: nothing to set: give --core-limit, --mem-limit, --weight, "
                        "--soft or --hard\n");
        goto bad;
    }
    *out = body;
    return 0;
bad:
    json_decref(body);
    return -1;
}
