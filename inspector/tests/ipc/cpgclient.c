/*
 * A small, unmodified libcpg client for the IPC recording tests (compiled by the tests
 * with `gcc cpgclient.c -lcpg -lpthread`). It walks every CPG call that makes IPC —
 * local_get, join (and join again), membership, iteration, mcast (small and one above
 * libcpg's atomic size, so PARTIAL_MCAST), zero-copy alloc/mcast/free, leave (and leave
 * again), finalize — then several threads with a connection each, and meanwhile a forked
 * child with its own connection; optionally a flood of large mcasts. Its output depends only on what libcpg returned and delivered
 * (pids are printed as "self"/"child"), so two runs against the same corosync print the
 * same lines whether or not the IPC is being recorded.
 *
 * usage: cpgclient GROUP [THREADS [BIG [FLOOD]]]
 *   BIG: size of the large mcast (0: none); FLOOD: that many 64 KiB mcasts as fast as libcpg
 *   takes them, retrying on CS_ERR_TRY_AGAIN (only the count of sent ones is printed)
 */
#include <corosync/cpg.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


/*
 * libcpg's handle table is libqb's qb_hdb, and qb_hdb_handle_create/_destroy (libqb 2.0.6
 * lib/hdb.c) take no lock: two threads creating handles at once can get the same slot, and
 * the first one's handle then answers CS_ERR_BAD_HANDLE although cpg_initialize returned
 * CS_OK (seen here about once in 10,000 concurrent initializes, with or without recording).
 * So handle creation and destruction are serialised, and fork() waits for them too; the IPC
 * itself (join, mcast, dispatch, leave) stays concurrent.
 */
static pthread_mutex_t handles = PTHREAD_MUTEX_INITIALIZER;

static cs_error_t initialize(cpg_handle_t *h, cpg_model_data_t *data, void *context)
{
    pthread_mutex_lock(&handles);
    cs_error_t rc = data ? cpg_model_initialize(h, CPG_MODEL_V1, data, context)
                         : cpg_initialize(h, NULL);
    pthread_mutex_unlock(&handles);
    return rc;
}

static cs_error_t finalize(cpg_handle_t h)
{
    pthread_mutex_lock(&handles);
    cs_error_t rc = cpg_finalize(h);
    pthread_mutex_unlock(&handles);
    return rc;
}

struct ctx {
    int confchgs;
    int joined_self;
    int left_self;
    int delivered;
    size_t delivered_bytes;
    int totem;
    char log[8192];
    size_t log_len;
};

static void logf_(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->log + c->log_len, sizeof(c->log) - c->log_len, fmt, ap);
    va_end(ap);
    if (n > 0 && c->log_len + (size_t)n < sizeof(c->log))
        c->log_len += (size_t)n;
}

static const char *who(uint32_t pid)
{
    return pid == (uint32_t)getpid() ? "self" : "other";
}

static void on_deliver(cpg_handle_t h, const struct cpg_name *g, uint32_t nodeid, uint32_t pid,
                       void *msg, size_t len)
{
    struct ctx *c;
    cpg_context_get(h, (void **)&c);
    unsigned sum = 0;
    for (size_t i = 0; i < len; i++)
        sum = sum * 31 + ((unsigned char *)msg)[i];
    logf_(c, "deliver group=%.*s node=%u pid=%s len=%zu sum=%08x\n", (int)g->length, g->value,
          nodeid, who(pid), len, sum);
    c->delivered++;
    c->delivered_bytes += len;
}

static void on_confchg(cpg_handle_t h, const struct cpg_name *g, const struct cpg_address *m,
                       size_t nm, const struct cpg_address *l, size_t nl,
                       const struct cpg_address *j, size_t nj)
{
    struct ctx *c;
    cpg_context_get(h, (void **)&c);
    (void)m;
    logf_(c, "confchg group=%.*s members=%zu left=%zu joined=%zu", (int)g->length, g->value, nm,
          nl, nj);
    for (size_t i = 0; i < nl; i++) {
        logf_(c, " left(%u,%s,%u)", l[i].nodeid, who(l[i].pid), l[i].reason);
        if (l[i].pid == (uint32_t)getpid())
            c->left_self = 1;
    }
    for (size_t i = 0; i < nj; i++) {
        logf_(c, " joined(%u,%s,%u)", j[i].nodeid, who(j[i].pid), j[i].reason);
        if (j[i].pid == (uint32_t)getpid())
            c->joined_self = 1;
    }
    logf_(c, "\n");
    c->confchgs++;
}

static void on_totem(cpg_handle_t h, struct cpg_ring_id ring, uint32_t n, const uint32_t *members)
{
    struct ctx *c;
    cpg_context_get(h, (void **)&c);
    logf_(c, "totem_confchg members=%u first=%u\n", n, n ? members[0] : 0);
    (void)ring;
    c->totem++;
}

static cpg_model_v1_data_t model = {
    .model = CPG_MODEL_V1,
    .cpg_deliver_fn = on_deliver,
    .cpg_confchg_fn = on_confchg,
    .cpg_totem_confchg_fn = on_totem,
    .flags = CPG_MODEL_V1_DELIVER_INITIAL_TOTEM_CONF,
};

/* Dispatches until `done` says so or 10 s pass. */
static int pump(cpg_handle_t h, struct ctx *c, int (*done)(struct ctx *, int), int arg)
{
    int fd;
    if (cpg_fd_get(h, &fd) != CS_OK)
        return -1;
    for (int i = 0; i < 1000 && !done(c, arg); i++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 10) > 0)
            if (cpg_dispatch(h, CS_DISPATCH_ALL) != CS_OK)
                return -1;
    }
    return done(c, arg) ? 0 : -1;
}

static int joined(struct ctx *c, int arg) { (void)arg; return c->joined_self && c->totem; }
static int left(struct ctx *c, int arg) { (void)arg; return c->left_self; }
static int got(struct ctx *c, int n) { return c->delivered >= n; }

static struct cpg_name name_of(const char *s)
{
    struct cpg_name n;
    memset(&n, 0, sizeof(n));
    n.length = strlen(s);
    memcpy(n.value, s, n.length);
    return n;
}

static void basic(const char *group, size_t big_len)
{
    struct ctx *c = calloc(1, sizeof(*c));
    cpg_handle_t h;
    cs_error_t rc = initialize(&h, (cpg_model_data_t *)&model, c);
    printf("initialize %d\n", rc);
    if (rc != CS_OK)
        exit(1);
    unsigned int nodeid = 0;
    rc = cpg_local_get(h, &nodeid);
    printf("local_get %d nodeid=%u\n", rc, nodeid);
    struct cpg_name g = name_of(group);
    printf("join %d\n", cpg_join(h, &g));
    printf("join_again %d\n", cpg_join(h, &g));
    printf("pump_join %d\n", pump(h, c, joined, 0));
    struct cpg_address members[CPG_MEMBERS_MAX];
    int n = CPG_MEMBERS_MAX;
    rc = cpg_membership_get(h, &g, members, &n);
    printf("membership %d n=%d", rc, n);
    for (int i = 0; i < n; i++)
        printf(" (%u,%s)", members[i].nodeid, who(members[i].pid));
    printf("\n");

    cpg_iteration_handle_t it;
    rc = cpg_iteration_initialize(h, CPG_ITERATION_ONE_GROUP, &g, &it);
    printf("iteration_initialize %d\n", rc);
    struct cpg_iteration_description_t d;
    while ((rc = cpg_iteration_next(it, &d)) == CS_OK)
        printf("iteration_next %d group=%.*s node=%u pid=%s\n", rc, (int)d.group.length,
               d.group.value, d.nodeid, who(d.pid));
    printf("iteration_next %d\n", rc);
    printf("iteration_finalize %d\n", cpg_iteration_finalize(it));

    struct iovec iov = {.iov_base = "hello, corosync", .iov_len = 15};
    printf("mcast %d\n", cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1));
    char *big = malloc(big_len + 1);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (char)(i * 7);
    struct iovec biov = {.iov_base = big, .iov_len = big_len};
    if (big_len > 0)
        printf("mcast_big %d\n", cpg_mcast_joined(h, CPG_TYPE_AGREED, &biov, 1));
    void *zbuf = NULL;
    rc = cpg_zcb_alloc(h, 64, &zbuf);
    printf("zcb_alloc %d\n", rc);
    if (rc == CS_OK) {
        memcpy(zbuf, "zero-copy payload", 17);
        printf("zcb_mcast %d\n", cpg_zcb_mcast_joined(h, CPG_TYPE_AGREED, zbuf, 17));
        printf("zcb_free %d\n", cpg_zcb_free(h, zbuf));
    }
    printf("pump_deliver %d\n", pump(h, c, got, big_len > 0 ? 3 : 2));
    printf("leave %d\n", cpg_leave(h, &g));
    printf("pump_leave %d\n", pump(h, c, left, 0));
    printf("leave_again %d\n", cpg_leave(h, &g));
    printf("finalize %d\n", finalize(h));
    printf("local_get_after_finalize %d\n", cpg_local_get(h, &nodeid));
    fputs(c->log, stdout);
    free(big);
    free(c);
}

struct worker {
    int index;
    char group[64];
    char out[4096];
};

static void *work(void *arg)
{
    struct worker *w = arg;
    struct ctx *c = calloc(1, sizeof(*c));
    cpg_handle_t h;
    int len = 0;
    cs_error_t rc = initialize(&h, (cpg_model_data_t *)&model, c);
    len += snprintf(w->out + len, sizeof(w->out) - len, "thread %d initialize %d\n", w->index, rc);
    if (rc != CS_OK)
        return NULL;
    struct cpg_name g = name_of(w->group);
    /* One call per statement: C leaves the order of argument evaluation open. */
    cs_error_t join_rc = cpg_join(h, &g);
    int pump_rc = pump(h, c, joined, 0);
    len += snprintf(w->out + len, sizeof(w->out) - len, "thread %d join %d pump %d\n", w->index,
                    join_rc, pump_rc);
    int sent = 0;
    for (int i = 0; i < 20; i++) {
        char msg[32];
        struct iovec iov = {.iov_base = msg, .iov_len = (size_t)snprintf(msg, sizeof(msg), "t%d m%d", w->index, i)};
        /* libcpg's documented answer to TRY_AGAIN is to retry. */
        while ((rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN)
            usleep(1000);
        sent += rc == CS_OK;
    }
    pump_rc = pump(h, c, got, 20);
    len += snprintf(w->out + len, sizeof(w->out) - len, "thread %d sent %d pump %d delivered %d\n",
                    w->index, sent, pump_rc, c->delivered);
    cs_error_t leave_rc = cpg_leave(h, &g);
    cs_error_t finalize_rc = finalize(h);
    len += snprintf(w->out + len, sizeof(w->out) - len, "thread %d leave %d finalize %d\n",
                    w->index, leave_rc, finalize_rc);
    free(c);
    return NULL;
}

static void forked(void);

/* The workers run while the main thread forks a child with its own connection, so that the
 * fork happens in the middle of other threads' IPC (and of their recording). */
static void threads(const char *group, int count)
{
    pthread_t t[16];
    struct worker w[16];
    for (int i = 0; i < count; i++) {
        w[i].index = i;
        w[i].out[0] = 0;
        snprintf(w[i].group, sizeof(w[i].group), "%s-t%d", group, i);
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    forked();
    for (int i = 0; i < count; i++) {
        pthread_join(t[i], NULL);
        fputs(w[i].out, stdout);
    }
}

static void flood(const char *group, int count)
{
    struct ctx *c = calloc(1, sizeof(*c));
    cpg_handle_t h;
    if (initialize(&h, (cpg_model_data_t *)&model, c) != CS_OK)
        exit(1);
    struct cpg_name g = name_of(group);
    cs_error_t join_rc = cpg_join(h, &g);
    int pump_rc = pump(h, c, joined, 0);
    static char msg[65536];
    struct iovec iov = {.iov_base = msg, .iov_len = sizeof(msg)};
    int sent = 0;
    for (int i = 0; i < count; i++) {
        cs_error_t rc;
        msg[0] = (char)i;
        while ((rc = cpg_mcast_joined(h, CPG_TYPE_AGREED, &iov, 1)) == CS_ERR_TRY_AGAIN)
            cpg_dispatch(h, CS_DISPATCH_ALL);
        sent += rc == CS_OK;
    }
    int got_rc = pump(h, c, got, count);
    printf("flood join %d pump %d sent %d pump %d delivered %d\n", join_rc, pump_rc, sent, got_rc,
           c->delivered);
    finalize(h);
    free(c);
}

static void forked(void)
{
    fflush(stdout);
    pthread_mutex_lock(&handles);
    pid_t child = fork();
    pthread_mutex_unlock(&handles);
    if (child == 0) {
        cpg_handle_t h;
        unsigned int nodeid = 0;
        cs_error_t a = initialize(&h, NULL, NULL);
        cs_error_t b = cpg_local_get(h, &nodeid);
        cs_error_t c = finalize(h);
        printf("child initialize %d local_get %d nodeid=%u finalize %d\n", a, b, nodeid, c);
        exit(a == CS_OK && b == CS_OK && c == CS_OK ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    printf("child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : 128);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: cpgclient GROUP [THREADS [BIG]]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    basic(argv[1], argc > 3 ? (size_t)atol(argv[3]) : 1500 * 1024);
    threads(argv[1], argc > 2 ? atoi(argv[2]) : 3);
    if (argc > 4 && atoi(argv[4]) > 0)
        flood(argv[1], atoi(argv[4]));
    return 0;
}
