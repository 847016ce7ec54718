/* needs_new_glibc.c - a shared object that needs the build host's newest pthread_create
 * (GLIBC_2.34 on glibc 2.34 and later), built without glibc_floor.h.
 *
 * Why this exists: the glibc-floor tests must show that their checks can fail. check-elf
 * --max-glibc 2.17 has to refuse this object, and an old glibc's loader has to refuse to load it
 * where it accepts the injected libraries.
 */
#include <pthread.h>

static void *nothing(void *arg)
{
    return arg;
}

/* starts and joins a thread: keeps the reference to pthread_create */
int vgpu_needs_new_glibc(void);
int vgpu_needs_new_glibc(void)
{
    pthread_t t;
    if (pthread_create(&t, 0, nothing, 0) != 0) return -1;
    return pthread_join(t, 0);
}
