/* cli.h - what the parts of the `vgpu` CLI share: the HTTP call to the daemon, the table
 * printer, the `set` option parser, and the exit codes.
 *
 * Why this exists: the CLI is split by responsibility (cli_main.c commands, cli_http.c
 * transport, cli_format.c tables, cli_set.c option checking); this is their contract.
 */
#ifndef VGPU_CLI_H
#define VGPU_CLI_H

#include <jansson.h>
#include <stddef.h>
#include <stdio.h>

enum {
    EXIT_DAEMON_REFUSED = 1, /* the daemon answered with an error */
    EXIT_UNREACHABLE = 2,    /* no daemon at the socket */
    EXIT_USAGE = 64,         /* bad command line (sysexits EX_USAGE) */
};

#define VGPU_DEFAULT_SOCKET "/run/vgpu/vgpu.sock"

struct cli_response {
    long status; /* HTTP status */
    char *body;  /* NUL-terminated, malloc'd (may be empty) */
    size_t len;
};

/* One request to the daemon at `socket_path`: method, path ("/v1/status"), optional JSON
 * body. 0 when an HTTP answer came (any status), -1 when the daemon could not be reached,
 * with the reason in err. */
int cli_request(const char *socket_path, const char *method, const char *path, const char *body,
                struct cli_response *out, char *err, size_t errlen);
void cli_response_free(struct cli_response *r);

/* Tables. */
void cli_print_status(FILE *out, json_t *status);
void cli_print_pods(FILE *out, json_t *pods); /* a JSON array of pod status entries */

/* `vgpu set` options (after NS/NAME) into a PUT body. 0, or -1 after printing a message that
 * names the option. */
int cli_set_body(int argc, char **argv, json_t **body);

/* `vgpu driver-check [--cuda PATH] [--nvml PATH] [--verbose]` (driver_check.c): its exit
 * status (0 all covered, 1 an allocation or launch entry point is not, 2 unreadable, 64). */
int cli_driver_check(int argc, char **argv);

/* "ns/name" checked and split; 0 or -1 after printing a message. */
int cli_pod_arg(const char *arg, char *ns, size_t nslen, char *name, size_t namelen);

#endif
