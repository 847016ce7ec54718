/* peer_group.h - which group of peers a new connection belongs to (http_server.h's caps).
 *
 * Why this exists: the per-pod connection cap must count a pod's connections together however
 * many processes it runs, and must not be fooled by what a peer says. On a Unix socket the
 * kernel names the peer (SO_PEERCRED pid), and the grouper turns the pid into its pod (by
 * default a hash of /proc/PID/cgroup; a peer whose group cannot be told is a group of its
 * own, keyed by its uid); over TCP the group is the peer's IP address.
 */
#ifndef VGPU_HV_PEER_GROUP_H
#define VGPU_HV_PEER_GROUP_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "hv_listener.h"

/* room for every key: "pod:" + a grouper key, "ip:" + an address */
#define PEER_GROUP_KEY_LEN 160

/* Replace how a Unix-socket peer's pid becomes its group key (NUL-terminated, at most n bytes
 * with the NUL): 0, or -1 when the group cannot be told (the peer is then grouped by its uid).
 * Called from the accept threads, concurrently for different listeners. NULL restores the
 * default (the hash of /proc/PID/cgroup). */
void peer_group_set_grouper(int (*fn)(pid_t pid, char *key, size_t n));

/* The group key of the peer on `fd` (accepted on a listener of `kind`, from address ss) into
 * key[n]. Reads /proc: call without locks held. */
void peer_group(enum hv_listener_kind kind, int fd, const struct sockaddr_storage *ss, char *key,
                size_t n);

#endif
