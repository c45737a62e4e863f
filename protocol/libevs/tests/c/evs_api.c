/*
 * totem-conformance: the libevs calls' edges against a running daemon (docs/evs.md §1):
 * handles, NULL arguments, contexts, the descriptor, membership truncation, the ring id,
 * and the man pages' spellings our header also offers. Prints "PASS" and exits 0, or
 * "FAIL: why" and exits 1. Argument: the number of members the ring has.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <corosync/corotypes.h>
#include <corosync/evs.h>

static int failed;

#define CHECK(cond) do { if (!(cond)) { printf ("FAIL: %s (line %d)\n", #cond, __LINE__); failed = 1; } } while (0)

static unsigned int confchg_members;
static struct evs_ring_id ring;
static int have_ring;
static unsigned int deliveries;
static evs_handle_t finalize_me;

static void deliver (hdb_handle_t handle, unsigned int nodeid, const void *msg, size_t msg_len)
{
	deliveries++;
	if (finalize_me != 0 && handle == finalize_me) {
		/* EVS-FIN-3: finalize from inside a callback. */
		CHECK (evs_finalize (handle) == CS_OK);
	}
}

static void confchg (hdb_handle_t handle,
	const unsigned int *member_list, size_t member_list_entries,
	const unsigned int *left_list, size_t left_list_entries,
	const unsigned int *joined_list, size_t joined_list_entries,
	const struct evs_ring_id *ring_id)
{
	confchg_members = member_list_entries;
	CHECK (ring_id != NULL);
	if (ring_id != NULL) {
		ring = *ring_id;
		have_ring = 1;
	}
}

int main (int argc, char **argv)
{
	evs_callbacks_t callbacks = { deliver, confchg };
	evs_callbacks_t only_confchg = { NULL, confchg };
	/* The man pages' spellings (docs/evs.md §2.3). */
	evs_groups_t g1 = { "api-1" };
	evs_group_t g2 = { "api-2" };
	evs_guarantee_t guarantee = EVS_GUARANTEE_SAFE;
	evs_handle_t h, h2, h3;
	unsigned int members[8], local = 0;
	size_t entries;
	void *ctx = &ctx;
	int fd = -1;
	struct pollfd pfd;
	char msg[] = "api";
	struct iovec iov = { msg, sizeof (msg) };
	unsigned int expect = argc > 1 ? (unsigned int)atoi (argv[1]) : 1;

	alarm (60);
	CHECK (evs_initialize (NULL, &callbacks) == CS_ERR_INVALID_PARAM);
	CHECK (evs_initialize (&h, &callbacks) == CS_OK);

	/* Unknown handles. */
	CHECK (evs_finalize (0) == CS_ERR_BAD_HANDLE);
	CHECK (evs_dispatch (h ^ 0x100000000ULL, CS_DISPATCH_ALL) == CS_ERR_BAD_HANDLE);
	CHECK (evs_join (h + 1, &g1, 1) == CS_ERR_BAD_HANDLE);
	CHECK (evs_join (0xffffffff00000000ULL | (h & 0xffffffffULL), &g1, 1) == CS_ERR_BAD_HANDLE);

	/* Context: NULL before a set (EVS-CTX-1). */
	CHECK (evs_context_get (h, &ctx) == CS_OK && ctx == NULL);
	CHECK (evs_context_set (h, &h) == CS_OK);
	CHECK (evs_context_get (h, &ctx) == CS_OK && ctx == &h);
	CHECK (evs_context_get (h, NULL) == CS_ERR_INVALID_PARAM);

	/* Membership: full, truncated (EVS-MEMB-5), NULL lists (EVS-MEMB-3, -4). */
	entries = 8;
	CHECK (evs_membership_get (h, &local, members, &entries) == CS_OK);
	CHECK (entries == expect);
	CHECK (local != 0);
	entries = 1;
	members[1] = 0xdeadbeef;
	CHECK (evs_membership_get (h, NULL, members, &entries) == CS_OK);
	CHECK (entries == 1 && members[1] == 0xdeadbeef);
	entries = 8;
	CHECK (evs_membership_get (h, NULL, NULL, &entries) == CS_OK && entries == expect);
	CHECK (evs_membership_get (h, &local, members, NULL) == CS_ERR_INVALID_PARAM);

	/* The connect-time confchg (EVS-CODE-1) makes the descriptor readable. */
	CHECK (evs_fd_get (h, &fd) == CS_OK && fd >= 0);
	CHECK (evs_fd_get (h, NULL) == CS_ERR_INVALID_PARAM);
	pfd.fd = fd;
	pfd.events = POLLIN;
	CHECK (poll (&pfd, 1, 10000) == 1);
	CHECK (evs_dispatch (h, CS_DISPATCH_ONE) == CS_OK);
	CHECK (have_ring && confchg_members == expect);
	CHECK (ring.nodeid != 0 && ring.seq != 0);

	/* Join, send to self, leave (EVS-JOIN-*, EVS-LEAVE-7). */
	CHECK (evs_join (h, &g1, 1) == CS_OK);
	CHECK (evs_join (h, NULL, 1) == CS_ERR_INVALID_PARAM);
	CHECK (evs_join (h, NULL, 0) == CS_OK);
	while (evs_mcast_joined (h, guarantee, &iov, 1) == CS_ERR_TRY_AGAIN);
	while (evs_mcast_groups (h, EVS_TYPE_AGREED, &g2, 1, &iov, 1) == CS_ERR_TRY_AGAIN);
	while (evs_mcast_groups (h, EVS_TYPE_AGREED, &g1, 1, &iov, 1) == CS_ERR_TRY_AGAIN);
	CHECK (evs_mcast_joined (h, EVS_TYPE_AGREED, NULL, 1) == CS_ERR_INVALID_PARAM);
	CHECK (evs_mcast_joined (h, EVS_TYPE_AGREED, &iov, EVS_IOV_MAX + 1) == CS_ERR_INVALID_PARAM);
	while (deliveries < 2) {
		CHECK (evs_dispatch (h, CS_DISPATCH_ONE) == CS_OK);
	}
	CHECK (evs_dispatch (h, CS_DISPATCH_ALL) == CS_OK);
	CHECK (deliveries == 2);
	CHECK (evs_leave (h, &g2, 1) == CS_ERR_NOT_EXIST);
	CHECK (evs_leave (h, &g1, 1) == CS_OK);

	/* A NULL callback drops its events (EVS-INIT-4); NULL callbacks are allowed. */
	CHECK (evs_initialize (&h2, &only_confchg) == CS_OK);
	CHECK (evs_join (h2, &g2, 1) == CS_OK);
	while (evs_mcast_joined (h2, EVS_TYPE_AGREED, &iov, 1) == CS_ERR_TRY_AGAIN);
	deliveries = 0;
	CHECK (evs_dispatch (h2, CS_DISPATCH_ONE) == CS_OK); /* the confchg */
	CHECK (evs_dispatch (h2, CS_DISPATCH_ONE) == CS_OK); /* the message, dropped */
	CHECK (deliveries == 0);
	CHECK (evs_finalize (h2) == CS_OK);
	CHECK (evs_initialize (&h3, NULL) == CS_OK);
	CHECK (evs_finalize (h3) == CS_OK);

	/* Finalize inside a callback ends the dispatch with CS_OK (EVS-FIN-3). */
	CHECK (evs_join (h, &g1, 1) == CS_OK);
	while (evs_mcast_joined (h, EVS_TYPE_AGREED, &iov, 1) == CS_ERR_TRY_AGAIN);
	while (evs_mcast_joined (h, EVS_TYPE_AGREED, &iov, 1) == CS_ERR_TRY_AGAIN);
	finalize_me = h;
	deliveries = 0;
	CHECK (evs_dispatch (h, CS_DISPATCH_BLOCKING) == CS_OK);
	CHECK (deliveries == 1);

	/* Every call on a finalized handle (EVS-FIN-2). */
	CHECK (evs_finalize (h) == CS_ERR_BAD_HANDLE);
	CHECK (evs_dispatch (h, CS_DISPATCH_ALL) == CS_ERR_BAD_HANDLE);
	CHECK (evs_join (h, &g1, 1) == CS_ERR_BAD_HANDLE);
	CHECK (evs_leave (h, &g1, 1) == CS_ERR_BAD_HANDLE);
	CHECK (evs_mcast_joined (h, EVS_TYPE_AGREED, &iov, 1) == CS_ERR_BAD_HANDLE);
	CHECK (evs_mcast_groups (h, EVS_TYPE_AGREED, &g1, 1, &iov, 1) == CS_ERR_BAD_HANDLE);
	CHECK (evs_membership_get (h, &local, members, &entries) == CS_ERR_BAD_HANDLE);
	CHECK (evs_fd_get (h, &fd) == CS_ERR_BAD_HANDLE);
	CHECK (evs_context_get (h, &ctx) == CS_ERR_BAD_HANDLE);
	CHECK (evs_context_set (h, NULL) == CS_ERR_BAD_HANDLE);

	if (failed) {
		return 1;
	}
	printf ("PASS\n");
	return 0;
}
