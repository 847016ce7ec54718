/* glibc_floor.h - lets the injected libraries (libcuda_limiter.so, libadd_path.so) load into
 * processes whose glibc is as old as 2.17, although they are built against a newer one.
 *
 * It is force-included (-include) into every source of both libraries, the shared sources of
 * src/common compiled into the limiter included. The linker binds each glibc function to its
 * newest version in the build host's glibc; the functions that moved from libpthread and libdl
 * into libc in 2.34, and pthread_sigmask (new version in 2.32), would then need that glibc. The
 * .symver directives below bind each of them to the oldest version instead: the one every glibc
 * since 2.17 has and that 2.34 and later still export, as compatibility symbols, for the same
 * function. Below 2.34 those functions live in libpthread.so.0 and libdl.so.2, so both libraries
 * list them as NEEDED (on 2.34 and later they are empty stubs): glibc's own libraries only.
 *
 * Invariants:
 * - no system header is included here: this file is read before each source's own feature macros
 *   (_GNU_SOURCE) and must not settle them;
 * - only the functions named here are pinned, each to the version in which it first appeared on
 *   that architecture. A function whose ABI changed between versions must never be pinned to the
 *   old one (pthread_cond_* at GLIBC_2.2.5 on x86-64 is the LinuxThreads condition variable);
 * - stat and fstat have no symbol before 2.33 (older glibc made them inline wrappers of __xstat and
 *   __fxstat), so they are renamed here to functions of glibc_floor.c that ask the kernel directly;
 * - a glibc function newly used by either library that needs more than 2.17 is caught by the build
 *   checks (scripts/check-elf --max-glibc 2.17, run by scripts/release and CTest), not silently.
 */
#ifndef VGPU_GLIBC_FLOOR_H
#define VGPU_GLIBC_FLOOR_H

#if defined(__x86_64__)
#define VGPU_GLIBC_BASE "GLIBC_2.2.5"
#define VGPU_GLIBC_2_12 "GLIBC_2.12"
#elif defined(__aarch64__)
/* the first glibc for aarch64: every function here has this version */
#define VGPU_GLIBC_BASE "GLIBC_2.17"
#define VGPU_GLIBC_2_12 "GLIBC_2.17"
#else
#error "glibc_floor.h: add this architecture's oldest glibc versions"
#endif

#define VGPU_GLIBC_PIN(fn, version) __asm__(".symver " #fn "," #fn "@" version);

/* libdl before 2.34. dlsym is not pinned: the limiter defines (exports) it, and finds the real
 * one with dlvsym. */
VGPU_GLIBC_PIN(dlopen, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(dlerror, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(dlvsym, VGPU_GLIBC_BASE)
/* libpthread before 2.34 (pthread_sigmask: before 2.32) */
VGPU_GLIBC_PIN(pthread_create, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(pthread_once, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(pthread_sigmask, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(pthread_mutex_trylock, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(pthread_mutexattr_init, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(pthread_mutexattr_destroy, VGPU_GLIBC_BASE)
VGPU_GLIBC_PIN(pthread_mutexattr_setpshared, VGPU_GLIBC_BASE)
/* robust mutexes and thread names came in 2.12 */
VGPU_GLIBC_PIN(pthread_mutex_consistent, VGPU_GLIBC_2_12)
VGPU_GLIBC_PIN(pthread_mutexattr_setrobust, VGPU_GLIBC_2_12)
VGPU_GLIBC_PIN(pthread_setname_np, VGPU_GLIBC_2_12)

#undef VGPU_GLIBC_PIN

/* stat and fstat under other names (glibc_floor.c); the declarations of <sys/stat.h> that follow
 * are compatible and keep these names. */
struct stat;
extern int stat(const char *__restrict path,
                struct stat *__restrict buf) __asm__("vgpu_floor_stat");
extern int fstat(int fd, struct stat *buf) __asm__("vgpu_floor_fstat");

#endif
