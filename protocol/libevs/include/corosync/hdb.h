/*
 * totem-conformance: <corosync/hdb.h> for libevs programs.
 *
 * corosync 1.4 shipped a whole handle database in this header; a program only ever needs
 * the handle type, which is what the EVS callbacks receive as their first argument.
 */
#ifndef TOTEM_COROSYNC_HDB_H
#define TOTEM_COROSYNC_HDB_H

#include <stdint.h>

/* A 64-bit handle: a random check in the upper half, a table index in the lower. */
typedef uint64_t hdb_handle_t;

#endif /* TOTEM_COROSYNC_HDB_H */
