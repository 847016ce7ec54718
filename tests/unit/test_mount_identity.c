/* test_mount_identity.c - the daemon finds which of its pod directories a container has mounted
 * from the container's /proc/PID/mountinfo (src/hypervisor/mount_identity.c). */
#include <string.h>

#include "../../src/hypervisor/mount_identity.h"
#include "unit_case.h"

/* a container's table as a runtime makes it: its root, /proc, then the device plugin's mounts
 * of the daemon's tmpfs (0:26, mounted at /run on the host) and another filesystem */
static const char table[] =
    "1431 1322 0:134 / / rw,relatime master:400 - overlay overlay rw,lowerdir=/l,upperdir=/u\n"
    "1432 1431 0:137 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw\n"
    "1440 1431 0:26 /vgpu/worker.sock /run/vgpu/worker.sock rw,nosuid,nodev - tmpfs tmpfs rw\n"
    "1441 1431 0:26 /vgpu/shm/node /run/vgpu/shm/node ro,nosuid,nodev - tmpfs tmpfs rw\n"
    "1442 1431 0:26 /vgpu/shm/pods/a-0123abcd/control /run/vgpu/shm/pods/a-0123abcd/control "
    "ro,nosuid,nodev - tmpfs tmpfs rw\n"
    "1443 1431 0:26 /vgpu/shm/pods/a-0123abcd/ledger /run/vgpu/shm/pods/a-0123abcd/ledger "
    "rw,nosuid,nodev - tmpfs tmpfs rw\n"
    "1444 1431 8:1 /var/lib/x/pods/a-ffff/ledger /data rw,relatime - ext4 /dev/sda1 rw\n"
    "1445 1431 0:26 /vgpu/shm/pods/a-55/ledger/sub /x rw - tmpfs tmpfs rw\n"
    "1446 1431 0:26 /vgpu/shm/pods/../ledger /y rw - tmpfs tmpfs rw\n"
    "1447 1431 0:26 /vgpu/shm/notpods/a-66/ledger /z rw - tmpfs tmpfs rw\n";

UNIT_CASE(allocation_mounts_name_one_directory)
{
    char names[MOUNT_IDENTITY_MAX][HV_DIR_NAME_LEN];
    /* the allocation's two mounts name one directory; nothing else counts */
    CHECK_EQ_INT(mount_identity_parse(table, strlen(table), 0, 26, names, MOUNT_IDENTITY_MAX), 1);
    CHECK_STR(names[0], "a-0123abcd");
}

UNIT_CASE(same_path_on_other_filesystem_not_ours)
{
    char names[MOUNT_IDENTITY_MAX][HV_DIR_NAME_LEN];
    /* the same path on another filesystem is not ours */
    CHECK_EQ_INT(mount_identity_parse(table, strlen(table), 0, 27, names, MOUNT_IDENTITY_MAX), 0);
    CHECK_EQ_INT(mount_identity_parse(table, strlen(table), 8, 1, names, MOUNT_IDENTITY_MAX), 1);
    CHECK_STR(names[0], "a-ffff");
}

UNIT_CASE(two_allocations_each_named_once)
{
    char names[MOUNT_IDENTITY_MAX][HV_DIR_NAME_LEN];
    /* two allocations (two resources of one container): both, each once */
    const char two[] = "1 0 0:26 /shm/pods/a-1/ledger /a rw - tmpfs t rw\n"
                       "2 0 0:26 /shm/pods/a-2/control /b ro - tmpfs t rw\n"
                       "3 0 0:26 /shm/pods/a-1/control /c ro - tmpfs t rw\n";
    CHECK_EQ_INT(mount_identity_parse(two, strlen(two), 0, 26, names, MOUNT_IDENTITY_MAX), 2);
    CHECK_STR(names[0], "a-1");
    CHECK_STR(names[1], "a-2");
    CHECK_EQ_INT(mount_identity_parse(two, strlen(two), 0, 26, names, 1), 1); /* at most max */
}

UNIT_CASE(non_mountinfo_table_refused)
{
    char names[MOUNT_IDENTITY_MAX][HV_DIR_NAME_LEN];
    /* not a mountinfo table: refused */
    CHECK_EQ_INT(mount_identity_parse("", 0, 0, 26, names, 8), -1);
    CHECK_EQ_INT(mount_identity_parse("garbage\n", 8, 0, 26, names, 8), -1);
    const char nosep[] = "1 0 0:26 /shm/pods/a-1/ledger /a rw tmpfs t rw\n";
    CHECK_EQ_INT(mount_identity_parse(nosep, strlen(nosep), 0, 26, names, 8), -1);
    const char baddev[] = "1 0 x:26 /shm/pods/a-1/ledger /a rw - tmpfs t rw\n";
    CHECK_EQ_INT(mount_identity_parse(baddev, strlen(baddev), 0, 26, names, 8), -1);
}
