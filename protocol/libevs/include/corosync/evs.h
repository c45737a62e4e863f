/*
 * totem-conformance: <corosync/evs.h>, the Extended Virtual Synchrony API of corosync
 * 1.4.10 (docs/evs.md section 2), served by totemd's "evs" IPC service through libevs.so
 * (protocol/libevs). Same types, values and signatures as 1.4.10, so 1.4 programs build
 * unchanged; see docs/evs.md section 1 for what each call promises.
 *
 * Differences from 1.4 a program can see: the confchg callback's ring_id points to the
 * real ring id (1.4 passed NULL); NULL arrays with non-zero counts, more than
 * EVS_IOV_MAX iovecs and a NULL member_list_entries give CS_ERR_INVALID_PARAM.
 */
#ifndef TOTEM_COROSYNC_EVS_H
#define TOTEM_COROSYNC_EVS_H

#include <inttypes.h>
#include <stddef.h>
#include <netinet/in.h>
#include <sys/uio.h>
#include <corosync/hdb.h>
#include <corosync/corotypes.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One connection to the EVS service, as returned by evs_initialize(). */
typedef uint64_t evs_handle_t;

/*
 * The ordering asked of a send. Every EVS message is delivered in agreed order whatever
 * is asked (EVS-MJ-4); the value is accepted and not checked.
 */
typedef enum {
	EVS_TYPE_UNORDERED,
	EVS_TYPE_FIFO,
	EVS_TYPE_AGREED,
	EVS_TYPE_SAFE
} evs_guarantee_t;

#ifndef TOTEMIP_ADDRLEN
#define TOTEMIP_ADDRLEN (sizeof(struct in6_addr))
#endif

/* The most iovecs one send accepts (1.4 overflowed a stack array beyond 63). */
#define EVS_IOV_MAX 1024

/* A group: 32 bytes compared whole, so initialise all of them. */
struct evs_group {
	char key[32];
};

/* The ring a configuration belongs to: its representative's nodeid and its sequence. */
struct evs_ring_id {
	unsigned int nodeid;
	unsigned long long seq;
};

/* A message from the node `nodeid`; `msg` is valid only during the call. */
typedef void (*evs_deliver_fn_t) (
	hdb_handle_t handle,
	unsigned int nodeid,
	const void *msg,
	size_t msg_len);

/* A configuration: its members, the nodes that left and those that joined (nodeids). */
typedef void (*evs_confchg_fn_t) (
	hdb_handle_t handle,
	const unsigned int *member_list, size_t member_list_entries,
	const unsigned int *left_list, size_t left_list_entries,
	const unsigned int *joined_list, size_t joined_list_entries,
	const struct evs_ring_id *ring_id);

/* Copied by evs_initialize(); a NULL entry drops that kind of event. Order matters. */
typedef struct {
	evs_deliver_fn_t evs_deliver_fn;
	evs_confchg_fn_t evs_confchg_fn;
} evs_callbacks_t;

/*
 * Spellings of the evs_*(3) man pages that no 1.4 header had; offered where they cannot
 * change what a 1.4 program means.
 */
typedef struct evs_group evs_group_t;
typedef struct evs_group evs_groups_t;
typedef evs_guarantee_t evs_guraantee_t;
typedef cs_dispatch_flags_t evs_dispatch_t;
#define EVS_GUARANTEE_UNORDERED EVS_TYPE_UNORDERED
#define EVS_GUARANTEE_FIFO EVS_TYPE_FIFO
#define EVS_GUARANTEE_AGREED EVS_TYPE_AGREED
#define EVS_GUARANTEE_SAFE EVS_TYPE_SAFE

/* Connects to the daemon; CS_ERR_TRY_AGAIN when it is not running. */
cs_error_t evs_initialize (
	evs_handle_t *handle,
	evs_callbacks_t *callbacks);

/* Closes the connection; the handle is invalid afterwards. */
cs_error_t evs_finalize (
	evs_handle_t handle);

/* A descriptor that polls readable while an event waits for evs_dispatch(). */
cs_error_t evs_fd_get (
	evs_handle_t handle,
	int *fd);

/* The pointer last stored with evs_context_set(), NULL before. */
cs_error_t evs_context_get (
	evs_handle_t handle,
	void **context);

/* Stores a pointer for the program; the library never uses it. */
cs_error_t evs_context_set (
	evs_handle_t handle,
	void *context);

/* Runs the callbacks of waiting events (see cs_dispatch_flags_t). */
cs_error_t evs_dispatch (
	evs_handle_t handle,
	cs_dispatch_flags_t dispatch_types);

/* Adds groups to this connection's list (at most 50 per call). */
cs_error_t evs_join (
	evs_handle_t handle,
	const struct evs_group *groups,
	size_t group_cnt);

/* Removes one copy of each group; CS_ERR_NOT_EXIST at the first one not joined. */
cs_error_t evs_leave (
	evs_handle_t handle,
	const struct evs_group *groups,
	size_t group_cnt);

/* Sends the gathered iovecs to the groups this connection joined. */
cs_error_t evs_mcast_joined (
	evs_handle_t handle,
	evs_guarantee_t guarantee,
	const struct iovec *iovec,
	unsigned int iov_len);

/* Sends the gathered iovecs to the given groups, joined or not. */
cs_error_t evs_mcast_groups (
	evs_handle_t handle,
	evs_guarantee_t guarantee,
	const struct evs_group *groups,
	size_t group_cnt,
	const struct iovec *iovec,
	unsigned int iov_len);

/*
 * This node's id and the current members. *member_list_entries is the room in
 * member_list on entry and the number written on return (a longer list is cut short).
 * local_nodeid and member_list may be NULL.
 */
cs_error_t evs_membership_get (
	evs_handle_t handle,
	unsigned int *local_nodeid,
	unsigned int *member_list,
	size_t *member_list_entries);

#ifdef __cplusplus
}
#endif

#endif /* TOTEM_COROSYNC_EVS_H */
