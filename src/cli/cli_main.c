/* cli_main.c - `vgpu`, the operator's command line for vgpu-hypervisor: see pods and GPUs,
 * change a pod's limits, suspend and resume it, read the metrics.
 *
 * Why this exists: operators should not need curl and a Unix socket path to look at or change
 * a node. Commands map one-to-one onto the daemon's operator endpoints (docs/hypervisor.md).
 * Exit status: 0 done, 1 the daemon refused (its message is printed), 2 no daemon at the
 * socket, 64 a bad command line.
 */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static const char *socket_path = VGPU_DEFAULT_SOCKET;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: vgpu [--socket PATH] COMMAND [ARGS]\n"
            "\n"
            "Talks to vgpu-hypervisor on this node.\n"
            "\n"
            "Commands:\n"
            "  status [--json]            GPUs, pods (limits, use, state), unregistered\n"
            "                             processes and pods over their memory cap\n"
            "  set NS/NAME [OPTIONS]      change a pod's limits (kept across restarts; a pod that\n"
            "                             has not started yet gets them when it does)\n"
            "      --gpu N|UUID|all         which GPU (default: all of the pod's GPUs); one\n"
            "                               the node does not have is refused\n"
            "      --core-limit PCT         compute share in percent, (0, 100]\n"
            "      --mem-limit SIZE         memory cap, e.g. 4GiB or 512MiB; 0 or none = no cap\n"
            "      --weight W               share of idle time among soft pods, 1..10000\n"
            "      --soft | --hard          soft: may use idle compute above the limit\n"
            "  reset NS/NAME              drop the operator's limits (Kubernetes annotations or\n"
            "                             the daemon's defaults apply again)\n"
            "  suspend NS/NAME            stop the pod's GPU submissions (a pod the daemon\n"
            "                             knows: running, set, or reported by Kubernetes)\n"
            "  resume NS/NAME             let them run again\n"
            "  metrics                    the daemon's Prometheus metrics\n"
            "  driver-check [--cuda PATH] [--nvml PATH] [--verbose]\n"
            "                             the installed driver's allocation and launch entry\n"
            "                             points the limiter does not hook (no daemon needed;\n"
            "                             exit 0 none, 1 some, 2 a library cannot be read)\n"
            "\n"
            "Options:\n"
            "  --socket PATH   the daemon's operator socket (env VGPU_SOCKET; default %s)\n"
            "  --help, --version\n"
            "\n"
            "Exit status: 0 done, 1 the daemon refused, 2 cannot reach the daemon, 64 usage.\n",
            VGPU_DEFAULT_SOCKET);
}

static int usage_error(const char *fmt, const char *arg)
{
    fputs("vgpu: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs(" (see vgpu --help)\n", stderr);
    return EXIT_USAGE;
}

/* Send one request; print errors; 0 with the answer, or an exit status. */
static int call(const char *method, const char *path, const char *body, struct cli_response *r)
{
    char err[512];
    if (cli_request(socket_path, method, path, body, r, err, sizeof(err)) != 0) {
        fprintf(stderr,
                "vgpu: cannot reach vgpu-hypervisor at %s: %s (is the daemon running? "
                "--socket / VGPU_SOCKET)\n",
                socket_path, err);
        return EXIT_UNREACHABLE;
    }
    if (r->status >= 200 && r->status < 300) return 0;
    json_t *j = json_loadb(r->body, r->len, 0, NULL);
    const char *msg = json_string_value(json_object_get(j, "error"));
    if (msg) {
        fprintf(stderr, "vgpu: %s\n", msg);
    } else {
        size_t n = strcspn(r->body, "\n");
        fprintf(stderr, "vgpu: the daemon answered HTTP %ld%s%.*s\n", r->status, n ? ": " : "",
                (int)(n > 300 ? 300 : n), r->body);
    }
    json_decref(j);
    cli_response_free(r);
    return EXIT_DAEMON_REFUSED;
}

static json_t *parse_answer(struct cli_response *r)
{
    json_error_t e;
    json_t *j = json_loadb(r->body, r->len, 0, &e);
    if (!j) fprintf(stderr, "vgpu: the daemon's answer is not JSON: %s\n", e.text);
    return j;
}

static int cmd_status(int argc, char **argv)
{
    int as_json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else
            return usage_error("status: unknown argument '%s'", argv[i]);
    }
    struct cli_response r;
    int rc = call("GET", "/v1/status", NULL, &r);
    if (rc) return rc;
    if (as_json) {
        fwrite(r.body, 1, r.len, stdout);
        if (r.len && r.body[r.len - 1] != '\n') putchar('\n');
    } else {
        json_t *st = parse_answer(&r);
        if (!st)
            rc = EXIT_DAEMON_REFUSED;
        else
            cli_print_status(stdout, st);
        json_decref(st);
    }
    cli_response_free(&r);
    return rc;
}

static int pod_path(const char *arg, const char *tail, char *path, size_t len)
{
    char ns[64], name[254];
    if (cli_pod_arg(arg, ns, sizeof(ns), name, sizeof(name)) != 0) return -1;
    snprintf(path, len, "/v1/pods/%s/%s/%s", ns, name, tail);
    return 0;
}

static int cmd_set(int argc, char **argv)
{
    if (argc < 1) return usage_error("%s", "set: which pod? (vgpu set NS/NAME OPTIONS)");
    char path[512];
    json_t *body = NULL;
    if (pod_path(argv[0], "limits", path, sizeof(path)) != 0) return EXIT_USAGE;
    if (cli_set_body(argc - 1, argv + 1, &body) != 0) return EXIT_USAGE;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text) {
        fprintf(stderr, "vgpu: out of memory\n");
        return EXIT_USAGE;
    }
    struct cli_response r;
    int rc = call("PUT", path, text, &r);
    free(text);
    if (rc) return rc;
    printf("%s: limits set\n", argv[0]);
    json_t *pod = json_loadb(r.body, r.len, 0, NULL);
    if (json_is_object(pod)) {
        json_t *one = json_pack("[O]", pod);
        cli_print_pods(stdout, one);
        json_decref(one);
        json_t *wk = json_object_get(pod, "workers");
        if (json_is_array(wk) && json_array_size(wk) == 0)
            printf("(no process of %s has registered yet: the settings apply when it starts)\n",
                   argv[0]);
    }
    json_decref(pod);
    cli_response_free(&r);
    return 0;
}

static int cmd_reset(int argc, char **argv)
{
    if (argc != 1) return usage_error("%s", "reset takes one pod: vgpu reset NS/NAME");
    char path[512];
    if (pod_path(argv[0], "limits", path, sizeof(path)) != 0) return EXIT_USAGE;
    struct cli_response r;
    int rc = call("DELETE", path, NULL, &r);
    if (rc) return rc;
    printf("%s: operator limits removed (Kubernetes annotations or daemon defaults apply)\n",
           argv[0]);
    cli_response_free(&r);
    return 0;
}

static int cmd_suspend(int argc, char **argv, const char *verb)
{
    if (argc != 1) return usage_error("%s takes one pod: NS/NAME", verb);
    char path[512];
    if (pod_path(argv[0], verb, path, sizeof(path)) != 0) return EXIT_USAGE;
    struct cli_response r;
    int rc = call("POST", path, "{}", &r);
    if (rc) return rc;
    json_t *j = parse_answer(&r);
    cli_response_free(&r);
    if (!j) return EXIT_DAEMON_REFUSED;
    long long seq = json_integer_value(json_object_get(j, "seq"));
    long long acked = json_integer_value(json_object_get(j, "acked"));
    long long workers = json_integer_value(json_object_get(j, "workers"));
    json_decref(j);
    const char *done = strcmp(verb, "suspend") == 0 ? "suspended" : "resumed";
    if (workers == 0)
        printf("%s: %s (seq %lld; no workers running)\n", argv[0], done, seq);
    else
        printf("%s: %s (seq %lld; %lld of %lld workers acked)\n", argv[0], done, seq, acked,
               workers);
    if (acked < workers)
        fprintf(stderr,
                "vgpu: %lld worker(s) did not acknowledge within 1 s; they apply it when they "
                "next reach the daemon\n",
                workers - acked);
    return 0;
}

static int cmd_metrics(int argc, char **argv)
{
    if (argc != 0) return usage_error("metrics: unknown argument '%s'", argv[0]);
    struct cli_response r;
    int rc = call("GET", "/metrics", NULL, &r);
    if (rc) return rc;
    fwrite(r.body, 1, r.len, stdout);
    cli_response_free(&r);
    return 0;
}

int main(int argc, char **argv)
{
    const char *env = getenv("VGPU_SOCKET");
    if (env && *env) socket_path = env;

    /* global options may come anywhere; the rest is the command and its arguments */
    char **args = calloc((size_t)argc + 1, sizeof(*args));
    if (!args) return EXIT_USAGE;
    int n = 0, rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--version") == 0) {
            printf("vgpu %s\n", VGPU_VERSION);
            rc = 0;
            goto out;
        } else if (strcmp(a, "--socket") == 0) {
            if (i + 1 >= argc) {
                rc = usage_error("%s", "--socket needs a path");
                goto out;
            }
            socket_path = argv[++i];
        } else if (strncmp(a, "--socket=", 9) == 0) {
            socket_path = a + 9;
        } else {
            args[n++] = argv[i];
        }
    }
    if (!*socket_path) {
        rc = usage_error("%s", "--socket: empty path");
        goto out;
    }
    if (n == 0) {
        usage(stderr);
        rc = EXIT_USAGE;
        goto out;
    }
    const char *cmd = args[0];
    if (strcmp(cmd, "status") == 0)
        rc = cmd_status(n - 1, args + 1);
    else if (strcmp(cmd, "set") == 0)
        rc = cmd_set(n - 1, args + 1);
    else if (strcmp(cmd, "reset") == 0)
        rc = cmd_reset(n - 1, args + 1);
    else if (strcmp(cmd, "suspend") == 0 || strcmp(cmd, "resume") == 0)
        rc = cmd_suspend(n - 1, args + 1, cmd);
    else if (strcmp(cmd, "metrics") == 0)
        rc = cmd_metrics(n - 1, args + 1);
    else if (strcmp(cmd, "driver-check") == 0)
        rc = cli_driver_check(n - 1, args + 1);
    else
        rc = usage_error("unknown command '%s'", cmd);
out:
    free(args);
    return rc;
}
