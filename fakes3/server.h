/*
 * server: fakes3's HTTP front end on libmicrohttpd: binds the listening socket, runs the daemon,
 * and carries every request through its stages (request.h) to a response.
 *
 * Concurrency: one thread per connection (MHD_USE_THREAD_PER_CONNECTION), not a poll-driven
 * thread pool. Each request's work runs on its connection's thread from start to end, so a slow
 * client, a slow disk (--fsync), a large body, or a delay the fault engine injects holds up only
 * that connection and never another: with a pool of N threads, N such requests would stall every
 * other connection, and every delay would have to be rebuilt as suspend/resume plus timers. The
 * price is one thread (and its stack) per open connection, bounded by --max-connections; S3
 * clients keep connections alive, so threads are made per connection, not per request.
 *
 * Idle connections: a connection on which nothing moves (no byte read or written) for
 * idle_timeout seconds is closed, so a client that sends half a request and stalls (slowloris)
 * holds its thread only that long. The timer runs while libmicrohttpd waits on the socket, not
 * while a request is being worked on.
 *
 * Faults: every S3 request (not the /_fakes3/ admin ones) is put to the fault engine once, right
 * after routing, and the decision is carried out on the wire by faults.c (see faults.h). A delay
 * is a sleep on the connection's own thread, which is why the model above matters: sixteen
 * requests delayed 40 ms each finish together after about 40 ms. Every such wait ends early when
 * the server stops, so SIGTERM is prompt even with requests stalled forever.
 *
 * Shutdown: fs3_server_stop closes the listening socket, ends every connection and joins every
 * thread. A request cut off mid-upload is aborted (its temp file removed); nothing half written
 * becomes visible (see store.h).
 */
#ifndef FS3_SERVER_H
#define FS3_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "chaos.h"
#include "error.h"
#include "store.h"

typedef struct fs3_req fs3_req;

/* The clock: milliseconds since the epoch. Injected, so tests can fix time. */
typedef int64_t (*fs3_clock_fn)(void *ctx);

/*
 * The points of a request's path where the fault engine acts (faults.h; request.h says exactly
 * where each one is).
 */
typedef enum fs3_stage {
    FS3_STAGE_ROUTED, /* routed; not yet authenticated, nothing of the body read */
    FS3_STAGE_STORED, /* the operation applied (an upload committed); response not sent */
    FS3_STAGE_SENDING /* the response is built and about to be queued */
} fs3_stage;

#define FS3_DEFAULT_IDLE_TIMEOUT 60

typedef struct fs3_config {
    const char *listen; /* "127.0.0.1:9000", "[::1]:9000", "0.0.0.0:0" (any free port) */
    const char *region; /* "us-east-1" */
    const char *access_key;
    const char *secret_key;
    int anonymous;            /* accept unsigned requests, check no signature */
    const char *vhost_domain; /* Host "<bucket>.<vhost_domain>" names a bucket */
    unsigned max_connections;
    unsigned idle_timeout;    /* seconds; 0: FS3_DEFAULT_IDLE_TIMEOUT */
    uint64_t max_object_size; /* a larger PutObject gets EntityTooLarge */
    const char *log_path;     /* JSON lines, one per request; NULL: none */
    fs3_clock_fn clock;
    void *clock_ctx;
    /* The fault engine (chaos/chaos.h), borrowed: it must outlive the server. NULL: no faults, and
     * /_fakes3/faults answers 501. */
    chaos_engine *faults;
} fs3_config;

typedef struct fs3_server fs3_server;

/*
 * Binds and listens on cfg->listen, so that a taken port is found before anything else is done.
 * Errors name the address and the cause ("127.0.0.1:9000 is already in use"). Connections wait
 * in the backlog until fs3_server_serve. *out is the caller's to stop.
 */
lv_err fs3_server_bind(const fs3_config *cfg, fs3_server **out, char *err);
/* Starts serving st (which must outlive the server) on the bound socket. */
lv_err fs3_server_serve(fs3_server *srv, fs3_store *st, char *err);
/* The address actually bound ("127.0.0.1:9000"; the real port when 0 was asked). */
const char *fs3_server_address(const fs3_server *srv);
/*
 * Connections open right now, counting one until libmicrohttpd has torn it down (its thread
 * joined, its memory freed): 0 means no request is left in flight. For tests and the fuzz
 * target, which wait for it before they look for leaks; 0 for a server not serving.
 */
unsigned fs3_server_connections(const fs3_server *srv);
/* Stops accepting, ends every connection (see the top of this file) and frees srv, serving
 * or only bound. */
void fs3_server_stop(fs3_server *srv);

#endif
