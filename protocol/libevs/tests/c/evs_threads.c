/*
 * totem-conformance: libevs from two threads on one handle, as testevsth.c intends but
 * cannot run (fixtures/evs/README.md): a thread sits in evs_dispatch(CS_DISPATCH_BLOCKING)
 * while the main thread sends; every own message must come back, in the order sent, and
 * evs_finalize() from the main thread must end the dispatch with CS_OK (EVS-FIN-3).
 * Prints "PASS ..." and exits 0, or prints "FAIL: why" and exits 1.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <corosync/corotypes.h>
#include <corosync/evs.h>

#define MESSAGES 20000
#define SIZE 1000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done = PTHREAD_COND_INITIALIZER;
static unsigned int local_nodeid;
static unsigned int own_seen;
static unsigned int confchgs;
static int bad;

static void fail (const char *why)
{
	printf ("FAIL: %s\n", why);
	fflush (stdout);
	exit (1);
}

static void deliver (hdb_handle_t handle, unsigned int nodeid, const void *msg, size_t msg_len)
{
	unsigned int seq;

	if (nodeid != local_nodeid) {
		return;
	}
	if (msg_len != SIZE) {
		bad = 1;
		return;
	}
	memcpy (&seq, msg, sizeof (seq));
	pthread_mutex_lock (&lock);
	if (seq != own_seen) {
		printf ("own message %u delivered where %u was due\n", seq, own_seen);
		bad = 1;
	}
	own_seen++;
	if (own_seen == MESSAGES) {
		pthread_cond_signal (&done);
	}
	pthread_mutex_unlock (&lock);
}

static void confchg (hdb_handle_t handle,
	const unsigned int *member_list, size_t member_list_entries,
	const unsigned int *left_list, size_t left_list_entries,
	const unsigned int *joined_list, size_t joined_list_entries,
	const struct evs_ring_id *ring_id)
{
	if (ring_id == NULL) {
		fail ("confchg without a ring id");
	}
	printf ("confchg: %zu members, ring %x.%llu\n", member_list_entries,
		ring_id->nodeid, ring_id->seq);
	confchgs++;
}

static evs_callbacks_t callbacks = { deliver, confchg };
static struct evs_group group = { "threads" };

static void *dispatcher (void *arg)
{
	evs_handle_t handle = *(evs_handle_t *)arg;
	cs_error_t *result = malloc (sizeof (*result));

	*result = evs_dispatch (handle, CS_DISPATCH_BLOCKING);
	return result;
}

int main (void)
{
	evs_handle_t handle;
	pthread_t thread;
	void *ret;
	char buf[SIZE];
	struct iovec iov = { buf, sizeof (buf) };
	unsigned int i, again = 0;
	size_t entries = 0;
	cs_error_t result;

	alarm (120);
	memset (buf, 0, sizeof (buf));
	if (evs_initialize (&handle, &callbacks) != CS_OK) {
		fail ("evs_initialize");
	}
	if (evs_membership_get (handle, &local_nodeid, NULL, &entries) != CS_OK) {
		fail ("evs_membership_get");
	}
	if (evs_join (handle, &group, 1) != CS_OK) {
		fail ("evs_join");
	}
	if (pthread_create (&thread, NULL, dispatcher, &handle) != 0) {
		fail ("pthread_create");
	}
	for (i = 0; i < MESSAGES; i++) {
		memcpy (buf, &i, sizeof (i));
		do {
			result = evs_mcast_joined (handle, EVS_TYPE_AGREED, &iov, 1);
			if (result == CS_ERR_TRY_AGAIN) {
				again++;
			}
		} while (result == CS_ERR_TRY_AGAIN);
		if (result != CS_OK) {
			printf ("evs_mcast_joined: %d\n", result);
			fail ("evs_mcast_joined");
		}
	}
	pthread_mutex_lock (&lock);
	while (own_seen < MESSAGES && !bad) {
		pthread_cond_wait (&done, &lock);
	}
	pthread_mutex_unlock (&lock);
	if (bad) {
		fail ("own messages out of order or damaged");
	}
	if (evs_finalize (handle) != CS_OK) {
		fail ("evs_finalize");
	}
	pthread_join (thread, &ret);
	if (*(cs_error_t *)ret != CS_OK) {
		printf ("dispatch returned %d\n", *(cs_error_t *)ret);
		fail ("the blocking dispatch did not end with CS_OK after finalize");
	}
	free (ret);
	if (confchgs < 1) {
		fail ("no configuration change (a new connection gets the current one)");
	}
	if (evs_dispatch (handle, CS_DISPATCH_ALL) != CS_ERR_BAD_HANDLE) {
		fail ("dispatch after finalize is not CS_ERR_BAD_HANDLE");
	}
	printf ("PASS %u messages, %u TRY_AGAIN, %u confchgs\n", MESSAGES, again, confchgs);
	return 0;
}
