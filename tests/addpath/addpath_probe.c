/* addpath_probe.c - prints PATH, LD_PRELOAD, LD_LIBRARY_PATH and the TF_* variables as env(1)
 * does (those set, in that order), optionally from a descendant: the add-path tests without a
 * shell.
 *
 * Why this exists: the release checks the arm64 libadd_path.so under qemu-user on an x86-64
 * host, where there is no aarch64 sh or env to preload it into. This program, cross-compiled,
 * is that process: addpath_test.sh runs its cases through it when ADDPATH_PROBE is set.
 *
 *   addpath_probe [DEPTH [clean]]
 *
 * DEPTH > 0: fork and exec this program again with DEPTH - 1 (a chain of DEPTH descendants),
 * and the last one prints. With "clean", the TF_* variables are unset before the first exec, so
 * the descendants only see what the library did in this process. When ADDPATH_PROBE_WRAPPER
 * is set (e.g. qemu-aarch64-static: without binfmt_misc an aarch64 program cannot be exec'd
 * directly) it is exec'd with argv[0] as its first argument; argv[0] must be a path.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const tf_vars[] = {
    "TF_PATH",         "TF_LD_PRELOAD",         "TF_LD_LIBRARY_PATH",
    "TF_PREPEND_PATH", "TF_PREPEND_LD_PRELOAD", "TF_PREPEND_LD_LIBRARY_PATH"};

int main(int argc, char **argv)
{
    int depth = argc > 1 ? atoi(argv[1]) : 0;
    if (depth <= 0) {
        static const char *const names[] = {"PATH", "LD_PRELOAD", "LD_LIBRARY_PATH"};
        for (int i = 0; i < 3; i++) {
            const char *v = getenv(names[i]);
            if (v) printf("%s=%s\n", names[i], v);
        }
        for (size_t i = 0; i < sizeof tf_vars / sizeof tf_vars[0]; i++) {
            const char *v = getenv(tf_vars[i]);
            if (v) printf("%s=%s\n", tf_vars[i], v);
        }
        return fflush(stdout) == 0 ? 0 : 1;
    }
    if (argc > 2 && argv[2][0] == 'c')
        for (size_t i = 0; i < sizeof tf_vars / sizeof tf_vars[0]; i++)
            unsetenv(tf_vars[i]);
    char next[16];
    snprintf(next, sizeof next, "%d", depth - 1);
    const char *wrapper = getenv("ADDPATH_PROBE_WRAPPER");
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        perror("addpath_probe: fork");
        return 2;
    }
    if (pid == 0) {
        if (wrapper && *wrapper)
            execl(wrapper, wrapper, argv[0], next, (char *)NULL);
        else
            execl(argv[0], argv[0], next, (char *)NULL);
        perror("addpath_probe: exec");
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) return 2;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 2;
}
