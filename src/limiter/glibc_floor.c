/* glibc_floor.c - stat and fstat for the injected libraries without glibc's 2.33 symbols.
 *
 * glibc_floor.h renames every stat and fstat call of the limiter (and of the src/common code
 * compiled into it) to these functions, because glibc before 2.33 has no stat or fstat symbol.
 * They make the system calls glibc itself makes on x86-64 and aarch64, where the kernel's struct
 * stat is glibc's struct stat; like glibc they return -1 and set errno on failure.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if !defined(__x86_64__) && !defined(__aarch64__)
#error "glibc_floor.c: check that the kernel's struct stat is glibc's on this architecture"
#endif

/* These define stat and fstat under glibc_floor.h's assembler names (vgpu_floor_stat,
 * vgpu_floor_fstat): hidden in the library, glibc's own stat and fstat stay untouched. */
int stat(const char *path, struct stat *buf)
{
    return (int)syscall(SYS_newfstatat, AT_FDCWD, path, buf, 0);
}

int fstat(int fd, struct stat *buf)
{
    return (int)syscall(SYS_fstat, fd, buf);
}
