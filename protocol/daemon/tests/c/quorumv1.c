/*
 * A libquorum client of model v1 (as dlm_controld 4.2 is): quorum_model_initialize
 * (QUORUM_MODEL_V1), quorum_trackstart(CS_TRACK_CHANGES), then one line per callback
 * until killed:
 *
 *   nodelist ring <nodeid>.<seq> members <ids> joined <ids> left <ids>
 *   quorum quorate <0|1> ring <nodeid>.<seq> view <ids>
 *
 * Part of totemd's tests (protocol/daemon/tests/quorum_v1.rs), written for them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <corosync/corotypes.h>
#include <corosync/quorum.h>

static void ids(const char *name, uint32_t n, const uint32_t *list)
{
	printf(" %s", name);
	for (uint32_t i = 0; i < n; i++)
		printf("%s%u", i ? "," : " ", list[i]);
	if (n == 0)
		printf(" -");
}

static void on_quorum(quorum_handle_t h, uint32_t quorate, struct quorum_ring_id ring,
		      uint32_t n, const uint32_t *view)
{
	(void)h;
	printf("quorum quorate %u ring %u.%llu", quorate, ring.nodeid,
	       (unsigned long long)ring.seq);
	ids("view", n, view);
	printf("\n");
	fflush(stdout);
}

static void on_nodelist(quorum_handle_t h, struct quorum_ring_id ring, uint32_t m,
			const uint32_t *members, uint32_t j, const uint32_t *joined,
			uint32_t l, const uint32_t *left)
{
	(void)h;
	printf("nodelist ring %u.%llu", ring.nodeid, (unsigned long long)ring.seq);
	ids("members", m, members);
	ids("joined", j, joined);
	ids("left", l, left);
	printf("\n");
	fflush(stdout);
}

int main(void)
{
	quorum_handle_t h;
	uint32_t type;
	quorum_model_v1_data_t data = {
		.model = QUORUM_MODEL_V1,
		.quorum_notify_fn = on_quorum,
		.nodelist_notify_fn = on_nodelist,
	};
	cs_error_t rc = quorum_model_initialize(&h, QUORUM_MODEL_V1,
						(quorum_model_data_t *)&data, &type, NULL);
	if (rc != CS_OK) {
		printf("init error %d\n", rc);
		return 1;
	}
	printf("type %u\n", type);
	rc = quorum_trackstart(h, CS_TRACK_CHANGES);
	if (rc != CS_OK) {
		printf("trackstart error %d\n", rc);
		return 1;
	}
	fflush(stdout);
	rc = quorum_dispatch(h, CS_DISPATCH_BLOCKING);
	printf("dispatch ended %d\n", rc);
	return 0;
}
