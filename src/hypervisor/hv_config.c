/* hv_config.c - the daemon's settings from their sources, in order of precedence.
 *
 * Why this exists: see hv_config.h. What each setting is (option, INI key, environment
 * variable, type, range, default, help) is one row of hv_settings.c; this file applies the
 * sources in order (built-in defaults, the --config file, the environment, the options) and
 * checks what only the whole configuration can tell. The INI file is read with libinih.
 */
#define _GNU_SOURCE
#include "hv_config.h"

#include <getopt.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hv_settings.h"

#define OPT_BASE 256 /* getopt value of hv_settings[i]: OPT_BASE + i */

struct ini_ctx {
    struct hv_config *c;
    char err[256];
    int line, err_line; /* lines read so far; the line whose value was refused (0: none) */
    FILE *f;            /* what ini_read reads: the file, or else the text */
    const char *text;
};

static int ini_cb(void *arg, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = arg;
    int known;
    const struct hv_setting *s = hv_setting_by_key(section, name, &known);
    if (!s) {
        if (known)
            snprintf(x->err, sizeof(x->err), "[%s] unknown key '%s'", section, name);
        else
            snprintf(x->err, sizeof(x->err), "unknown section [%s]", section);
        return 0;
    }
    char who[160];
    return !hv_setting_apply(x->c, s, value, hv_setting_key_name(s, who, sizeof(who)), x->err,
                             sizeof(x->err));
}

/* libinih goes on after an error and returns the line of the first one, which may be a syntax
 * error the callback never saw. So lines are counted here (libinih counts one per read) and
 * only the first refused value's message is kept, and shown only for its own line. */
static char *ini_read(char *str, int num, void *stream)
{
    struct ini_ctx *x = stream;
    char *r = NULL;
    if (x->f) {
        r = fgets(str, num, x->f);
    } else if (*x->text && num > 1) { /* as ini_parse_string reads */
        int n = 0;
        while (n < num - 1 && x->text[n] && x->text[n] != '\n')
            n++;
        if (n < num - 1 && x->text[n] == '\n') n++;
        memcpy(str, x->text, (size_t)n);
        str[n] = 0;
        x->text += n;
        r = str;
    }
    if (r) x->line++;
    return r;
}

static int ini_cb_first(void *arg, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = arg;
    if (x->err_line) return 1; /* refused already: the first message stands */
    if (ini_cb(arg, section, name, value)) return 1;
    x->err_line = x->line;
    return 0;
}

static const char *ini_error(const struct ini_ctx *x, int line)
{
    return line == x->err_line ? x->err : "syntax error";
}

int hv_config_parse_ini(struct hv_config *c, const char *text, char *err, size_t errlen)
{
    struct ini_ctx x = {.c = c, .text = text};
    int r = ini_parse_stream(ini_read, &x, ini_cb_first, &x);
    if (r == 0) return 0;
    if (r < 0)
        snprintf(err, errlen, "out of memory");
    else
        snprintf(err, errlen, "line %d: %s", r, ini_error(&x, r));
    return -1;
}

static int load_file(struct hv_config *c, char *err, size_t errlen)
{
    struct ini_ctx x = {.c = c, .f = fopen(c->config_file, "r")};
    int r = x.f ? ini_parse_stream(ini_read, &x, ini_cb_first, &x) : -1;
    if (x.f) fclose(x.f);
    if (r < 0) {
        snprintf(err, errlen, "--config %s: cannot read the file", c->config_file);
        return -1;
    }
    if (r > 0) {
        snprintf(err, errlen, "--config %s line %d: %s", c->config_file, r, ini_error(&x, r));
        return -1;
    }
    return 0;
}

static int load_defaults(struct hv_config *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < hv_n_settings; i++) {
        const struct hv_setting *s = &hv_settings[i];
        char why[256];
        if (s->def && hv_setting_apply(c, s, s->def, s->option, why, sizeof(why))) {
            snprintf(err, errlen, "built-in default: %s", why);
            return -1;
        }
    }
    return 0;
}

static int load_env(struct hv_config *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < hv_n_settings; i++) {
        const struct hv_setting *s = &hv_settings[i];
        const char *e = s->env ? getenv(s->env) : NULL;
        if (!e || !*e) continue;
        if (s->env_if_unset && ((const char *)c + s->off)[0]) continue;
        if (hv_setting_apply(c, s, e, s->env, err, errlen)) return -1;
    }
    return 0;
}

/* getopt_long's table from the settings that have an option */
static void make_options(struct option *o)
{
    size_t n = 0;
    for (size_t i = 0; i < hv_n_settings; i++)
        if (hv_settings[i].option)
            o[n++] = (struct option){hv_settings[i].option,
                                     hv_settings[i].type == HV_SET_FLAG ? no_argument
                                                                        : required_argument,
                                     NULL, OPT_BASE + (int)i};
    o[n] = (struct option){0, 0, 0, 0};
}

/* The first pass: --config (so that the file comes before the environment and the options),
 * --help and --version. 1 when the program should exit successfully, -1 with a message. */
static int first_pass(struct hv_config *c, int argc, char **argv, const struct option *opts,
                      char *err, size_t errlen)
{
    opterr = 0;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        const struct hv_setting *s = o >= OPT_BASE ? &hv_settings[o - OPT_BASE] : NULL;
        const char *name = s ? s->option : "";
        if (!strcmp(name, "config") && hv_setting_apply(c, s, optarg, "--config", err, errlen))
            return -1;
        if (!strcmp(name, "help")) {
            hv_settings_usage(stdout);
            return 1;
        }
        if (!strcmp(name, "version")) {
            puts("vgpu-hypervisor " VGPU_VERSION);
            return 1;
        }
    }
    return 0;
}

static int load_options(struct hv_config *c, int argc, char **argv, const struct option *opts,
                        char *err, size_t errlen)
{
    opterr = 0;
    optind = 1;
    int o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (o < OPT_BASE || o >= OPT_BASE + (int)hv_n_settings) {
            snprintf(err, errlen, "unknown or incomplete option '%s' (see --help)",
                     argv[optind - 1]);
            return -1;
        }
        const struct hv_setting *s = &hv_settings[o - OPT_BASE];
        if (s->type == HV_SET_FLAG) continue;
        if (s->type == HV_SET_NS_LIST) c->n_trusted_ns = 0; /* the option's list replaces */
        char who[80];
        if (hv_setting_apply(c, s, optarg, hv_setting_option_name(s, who, sizeof(who)), err,
                             errlen))
            return -1;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return 0;
}

/* What only the whole configuration can tell: the worker socket's default and the paths the
 * device plugin hands to containers. */
static int check_all(struct hv_config *c, char *err, size_t errlen)
{
    if (!c->worker_socket[0]) {
        const char *slash = strrchr(c->socket, '/');
        int dirlen = slash ? (int)(slash - c->socket) : 0;
        if (slash)
            snprintf(c->worker_socket, sizeof(c->worker_socket), "%.*s/worker.sock", dirlen,
                     c->socket);
        else
            snprintf(c->worker_socket, sizeof(c->worker_socket), "worker.sock");
    }
    if (!strcmp(c->worker_socket, c->socket)) {
        snprintf(err, errlen, "--worker-socket must differ from --socket (%s)", c->socket);
        return -1;
    }
    /* the device plugin hands these to the kubelet as host paths of mounts and as LD_PRELOAD in
     * a container, where a relative path would name something else or nothing */
    if (!c->device_plugin_dir[0]) return 0;
    const struct {
        const char *flag, *path;
    } abs[] = {{"device-plugin-dir", c->device_plugin_dir},
               {"lib-dir", c->lib_dir},
               {"shm-dir", c->shm_dir},
               {"worker-socket", c->worker_socket}};
    for (size_t i = 0; i < sizeof(abs) / sizeof(abs[0]); i++)
        if (abs[i].path[0] != '/') {
            snprintf(err, errlen,
                     "--%s: '%s' is not an absolute path (the device plugin gives it to "
                     "containers)",
                     abs[i].flag, abs[i].path);
            return -1;
        }
    return 0;
}

int hv_config_load(struct hv_config *c, int argc, char **argv, char *err, size_t errlen)
{
    struct option opts[HV_MAX_SETTINGS + 1];
    make_options(opts);
    if (load_defaults(c, err, errlen)) return -1;
    int r = first_pass(c, argc, argv, opts, err, errlen);
    if (r) return r;
    if (c->config_file[0] && load_file(c, err, errlen)) return -1;
    if (load_env(c, err, errlen)) return -1;
    if (load_options(c, argc, argv, opts, err, errlen)) return -1;
    return check_all(c, err, errlen);
}
