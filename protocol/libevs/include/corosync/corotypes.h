/*
 * totem-conformance: <corosync/corotypes.h> as corosync 1.4.10 programs expect it
 * (docs/evs.md section 2.3 and 2.4): the result codes, the dispatch flags, and the
 * deprecated EVS_* spellings that 1.4 still offered.
 */
#ifndef TOTEM_COROSYNC_COROTYPES_H
#define TOTEM_COROSYNC_COROTYPES_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nanoseconds, as corosync counts time. */
typedef int64_t cs_time_t;

/* How evs_dispatch() runs callbacks. Any other value is treated like CS_DISPATCH_BLOCKING. */
typedef enum {
	CS_DISPATCH_ONE = 1,      /* wait for one event and run its callback */
	CS_DISPATCH_ALL = 2,      /* run what is waiting, without waiting */
	CS_DISPATCH_BLOCKING = 3  /* run callbacks until the handle is finalized or an error */
} cs_dispatch_flags_t;

/* Result of every call; CS_OK is 1, not 0. */
typedef enum {
	CS_OK = 1,
	CS_ERR_LIBRARY = 2,
	CS_ERR_VERSION = 3,
	CS_ERR_INIT = 4,
	CS_ERR_TIMEOUT = 5,
	CS_ERR_TRY_AGAIN = 6,
	CS_ERR_INVALID_PARAM = 7,
	CS_ERR_NO_MEMORY = 8,
	CS_ERR_BAD_HANDLE = 9,
	CS_ERR_BUSY = 10,
	CS_ERR_ACCESS = 11,
	CS_ERR_NOT_EXIST = 12,
	CS_ERR_NAME_TOO_LONG = 13,
	CS_ERR_EXIST = 14,
	CS_ERR_NO_SPACE = 15,
	CS_ERR_INTERRUPT = 16,
	CS_ERR_NAME_NOT_FOUND = 17,
	CS_ERR_NO_RESOURCES = 18,
	CS_ERR_NOT_SUPPORTED = 19,
	CS_ERR_BAD_OPERATION = 20,
	CS_ERR_FAILED_OPERATION = 21,
	CS_ERR_MESSAGE_ERROR = 22,
	CS_ERR_QUEUE_FULL = 23,
	CS_ERR_QUEUE_NOT_AVAILABLE = 24,
	CS_ERR_BAD_FLAGS = 25,
	CS_ERR_TOO_BIG = 26,
	CS_ERR_NO_SECTIONS = 27,
	CS_ERR_CONTEXT_NOT_FOUND = 28,
	CS_ERR_TOO_MANY_GROUPS = 30,
	CS_ERR_IN_SHUTDOWN = 31,
	CS_ERR_SECURITY = 100
} cs_error_t;

/*
 * Deprecated names from before corosync 1.0, kept because 1.4 kept them and old programs
 * (testevsth.c among them) use them. Each is the CS_ value of the same meaning.
 */
#define EVS_DISPATCH_ONE CS_DISPATCH_ONE
#define EVS_DISPATCH_ALL CS_DISPATCH_ALL
#define EVS_DISPATCH_BLOCKING CS_DISPATCH_BLOCKING
#define EVS_OK CS_OK
#define EVS_ERR_LIBRARY CS_ERR_LIBRARY
#define EVS_ERR_TIMEOUT CS_ERR_TIMEOUT
#define EVS_ERR_TRY_AGAIN CS_ERR_TRY_AGAIN
#define EVS_ERR_INVALID_PARAM CS_ERR_INVALID_PARAM
#define EVS_ERR_NO_MEMORY CS_ERR_NO_MEMORY
#define EVS_ERR_BAD_HANDLE CS_ERR_BAD_HANDLE
#define EVS_ERR_ACCESS CS_ERR_ACCESS
#define EVS_ERR_NOT_EXIST CS_ERR_NOT_EXIST
#define EVS_ERR_EXIST CS_ERR_EXIST
#define EVS_ERR_NOT_SUPPORTED CS_ERR_NOT_SUPPORTED
#define EVS_ERR_SECURITY CS_ERR_SECURITY
#define EVS_ERR_TOO_MANY_GROUPS CS_ERR_TOO_MANY_GROUPS
#define evs_error_t cs_error_t

#ifdef __cplusplus
}
#endif

#endif /* TOTEM_COROSYNC_COROTYPES_H */
