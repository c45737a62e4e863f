/*
 * A libqb IPC peer of the `evs` service, for the recorder's test (inspector/tests/evs.rs):
 * the process serves "evs" with libqb's server API, then forks a client that talks to it
 * with libqb's client calls, as our libevs does (layout: totem_wire::ipc::evs, docs/evs.md
 * §9; libqb headers, id @0). The server answers every request CS_OK with its response id
 * (request id + 2) and sends each MCAST_GROUPS back as a DELIVER event from node 1.
 *
 * The client prints what it got; the process exits with the client's status. Run it in a
 * network namespace of its own: the "evs" socket name is per namespace.
 *
 *   gcc -Wall -O1 -o evspeer evspeer.c -lqb
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <qb/qbipc_common.h>
#include <qb/qbipcc.h>
#include <qb/qbipcs.h>
#include <qb/qbloop.h>

#define CS_OK 1
#define REQ_JOIN 0
#define REQ_MCAST_GROUPS 3
#define EVT_DELIVER 0

static qb_loop_t *loop;
static pid_t child;
static int child_status = 1;

static int32_t s_connect(qb_ipcs_connection_t *c, uid_t uid, gid_t gid) { return 0; }
static void s_created(qb_ipcs_connection_t *c) {}
static int32_t s_closed(qb_ipcs_connection_t *c) { return 0; }
static void s_destroyed(qb_ipcs_connection_t *c) {}

static int32_t s_msg(qb_ipcs_connection_t *c, void *data, size_t size)
{
	struct qb_ipc_request_header *h = data;
	struct qb_ipc_response_header res;

	memset(&res, 0, sizeof(res));
	res.id = h->id + 2;
	res.size = sizeof(res);
	res.error = CS_OK;
	qb_ipcs_response_send(c, &res, sizeof(res));
	if (h->id == REQ_MCAST_GROUPS && size >= 40) {
		/* msg_len u64 @24, group_entries u64 @32, keys @40, message after them */
		uint64_t len, n;
		memcpy(&len, (char *)data + 24, 8);
		memcpy(&n, (char *)data + 32, 8);
		if (40 + 32 * n + len != size)
			return 0;
		size_t event_size = 40 + len;
		char *event = calloc(1, event_size);
		struct qb_ipc_response_header *eh = (void *)event;
		uint32_t nodeid = 1;
		eh->id = EVT_DELIVER;
		eh->size = event_size;
		eh->error = CS_OK;
		memcpy(event + 24, &nodeid, 4);
		memcpy(event + 32, &len, 8);
		memcpy(event + 40, (char *)data + 40 + 32 * n, len);
		qb_ipcs_event_send(c, event, event_size);
		free(event);
	}
	return 0;
}

static int32_t d_add(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
		     qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_add(loop, p, fd, evts, data, fn);
}

static int32_t d_mod(enum qb_loop_priority p, int32_t fd, int32_t evts, void *data,
		     qb_ipcs_dispatch_fn_t fn)
{
	return qb_loop_poll_mod(loop, p, fd, evts, data, fn);
}

static int32_t d_del(int32_t fd) { return qb_loop_poll_del(loop, fd); }

static int32_t j_add(enum qb_loop_priority p, void *data, qb_loop_job_dispatch_fn fn)
{
	return qb_loop_job_add(loop, p, data, fn);
}

static int32_t on_sigchld(int32_t sig, void *data)
{
	int status;
	if (waitpid(child, &status, WNOHANG) == child) {
		child_status = WIFEXITED(status) ? WEXITSTATUS(status) : 1;
		qb_loop_stop(loop);
	}
	return 0;
}

static void key(char *k, const char *name)
{
	memset(k, 0, 32);
	memcpy(k, name, strlen(name));
}

static int client(void)
{
	qb_ipcc_connection_t *c = qb_ipcc_connect("evs", 1 << 20);
	if (c == NULL) {
		printf("connect failed: %d\n", errno);
		return 1;
	}
	struct qb_ipc_response_header res;

	/* JOIN: header(16), group_entries u64 @16, keys @24 */
	char join[24 + 64];
	struct qb_ipc_request_header *jh = (void *)join;
	uint64_t two = 2;
	memset(join, 0, sizeof(join));
	jh->id = REQ_JOIN;
	jh->size = sizeof(join);
	memcpy(join + 16, &two, 8);
	key(join + 24, "key1");
	key(join + 56, "key2");
	struct iovec iov = { join, sizeof(join) };
	ssize_t r = qb_ipcc_sendv_recv(c, &iov, 1, &res, sizeof(res), -1);
	printf("join %zd id %d error %d\n", r, res.id, res.error);

	/* MCAST_GROUPS: header(16), guarantee u32 (+4) @16, msg_len u64 @24,
	 * group_entries u64 @32, keys @40, message */
	const char *text = "hello evs";
	uint64_t len = strlen(text), one = 1;
	char head[40 + 32];
	struct qb_ipc_request_header *mh = (void *)head;
	memset(head, 0, sizeof(head));
	mh->id = REQ_MCAST_GROUPS;
	mh->size = sizeof(head) + len;
	memcpy(head + 24, &len, 8);
	memcpy(head + 32, &one, 8);
	key(head + 40, "key2");
	struct iovec two_iov[2] = { { head, sizeof(head) }, { (void *)text, len } };
	r = qb_ipcc_sendv_recv(c, two_iov, 2, &res, sizeof(res), -1);
	printf("mcast_groups %zd id %d error %d\n", r, res.id, res.error);

	char event[256];
	r = qb_ipcc_event_recv(c, event, sizeof(event), 10000);
	if (r >= 40)
		printf("event %zd id %d message %.*s\n", r,
		       ((struct qb_ipc_response_header *)event)->id, (int)(r - 40), event + 40);
	else
		printf("event %zd\n", r);
	qb_ipcc_disconnect(c);
	return 0;
}

int main(void)
{
	struct qb_ipcs_service_handlers sh = {
		.connection_accept = s_connect,
		.connection_created = s_created,
		.msg_process = s_msg,
		.connection_closed = s_closed,
		.connection_destroyed = s_destroyed,
	};
	struct qb_ipcs_poll_handlers ph = {
		.job_add = j_add,
		.dispatch_add = d_add,
		.dispatch_mod = d_mod,
		.dispatch_del = d_del,
	};
	loop = qb_loop_create();
	qb_ipcs_service_t *s = qb_ipcs_create("evs", 0, QB_IPC_SHM, &sh);
	if (loop == NULL || s == NULL)
		return 2;
	qb_ipcs_poll_handlers_set(s, &ph);
	if (qb_ipcs_run(s) != 0)
		return 2;
	qb_loop_signal_add(loop, QB_LOOP_HIGH, SIGCHLD, NULL, on_sigchld, NULL);
	/* The service listens from here on: the client needs no retry. */
	fflush(stdout);
	child = fork();
	if (child == 0)
		exit(client());
	qb_loop_run(loop);
	qb_ipcs_destroy(s);
	return child_status;
}
