/*
 * totem-conformance: evs_initialize with no daemon (EVS-INIT-9: CS_ERR_TRY_AGAIN), and
 * the deprecated spellings of corotypes.h (docs/evs.md §2.3). Exits 0 when both hold.
 */
#include <stdio.h>
#include <corosync/corotypes.h>
#include <corosync/evs.h>

int main (void)
{
	evs_handle_t handle = 0;
	evs_error_t result = evs_initialize (&handle, NULL);

	if (result != EVS_ERR_TRY_AGAIN) {
		printf ("evs_initialize without a daemon: %d, not %d\n", result, CS_ERR_TRY_AGAIN);
		return 1;
	}
	if (evs_dispatch (handle, EVS_DISPATCH_ALL) != EVS_ERR_BAD_HANDLE) {
		printf ("no handle was made, yet dispatch did not answer CS_ERR_BAD_HANDLE\n");
		return 1;
	}
	printf ("PASS\n");
	return 0;
}
