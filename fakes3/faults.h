/*
 * faults: fakes3's side of the fault engine (chaos/chaos.h). The engine decides, this module does
 * it on the wire: it puts each S3 request to the engine once, right after routing, keeps the
 * decision in the request (fs3_req.fault), and carries it out at the stages of request.h.
 *
 * What each action is, on the wire (what a client sees is in docs/fakes3.md, "Faults"):
 *
 *   action          stage     what happens
 *   delay=, jitter= ROUTED    a sleep first, before any action (and the whole of `latency`)
 *   latency         ROUTED    the sleep; then the request is served normally
 *   error           ROUTED    the S3 XML error document (any status, code, message), before
 *                             authentication and without reading the body
 *   reset           ROUTED    SO_LINGER {1, 0} and a disconnect: the peer gets a TCP RST
 *   close           ROUTED    the connection is closed (FIN) without a response
 *   stall [DUR]     ROUTED    nothing is read or sent for DUR, then the request is served; without
 *                             DUR until the client goes away or the server stops
 *   down DUR        ROUTED    this connection is reset; the server refuses connections (and drops
 *                             requests on connections already open) for DUR
 *   crash before    ROUTED    the request's log line is written, then raise(SIGKILL)
 *   lost-response   STORED    the operation was applied; then the connection is reset
 *   crash after     STORED    the operation was applied; log line, raise(SIGKILL)
 *   truncate BYTES  SENDING   the full Content-Length, BYTES of the body, then the connection is
 *                             closed (a body of at most BYTES is sent whole)
 *   bandwidth RATE  SENDING   the body is sent paced to RATE bytes per second
 *
 * The /_fakes3/ admin requests are never put to the engine: faults cannot lock out their own
 * control. Requests that fail before routing (a malformed request line or path) are not either.
 *
 * Threads: every function runs on the request's connection thread; the engine and the server
 * state they touch are thread-safe. Sleeps end early when the server stops (fs3_server_sleep).
 */
#ifndef FS3_FAULTS_H
#define FS3_FAULTS_H

#include <microhttpd.h>

#include "chaos.h"
#include "server.h"

/* What server.c does after a stage. */
typedef enum fs3_fault_step {
    FS3_FAULT_GO_ON,  /* carry on with the request as usual */
    FS3_FAULT_ANSWER, /* r->resp holds the answer: send it now, without reading the body */
    FS3_FAULT_DROP    /* return MHD_NO: the connection goes (reset or closed, as set up) */
} fs3_fault_step;

/* Asks the engine about r (routed; not an admin request) and keeps the answer in r->fault. */
void fs3_faults_decide(fs3_req *r);

/* Carries out what r->fault asks at stage (ROUTED or STORED). */
fs3_fault_step fs3_faults_at(fs3_req *r, fs3_stage stage);

/*
 * At FS3_STAGE_SENDING: when r->fault is truncate or bandwidth and the response has a body, a
 * libmicrohttpd response that sends it so, taking over r->resp's body (fd, object reference or
 * buffer; r->resp is left without one). NULL otherwise (nothing taken): build the usual one.
 */
struct MHD_Response *fs3_faults_response(fs3_req *r);

/* The S3 error document for any status, code and message (an error action). */
void fs3_faults_error(fs3_req *r, int status, const char *code, const char *message);

/* Makes the connection's close a TCP RST (SO_LINGER 0) and disconnects it now. */
void fs3_faults_reset(struct MHD_Connection *conn);

/* Down: the request on an open connection of a server that is down is reset (summary set). */
void fs3_faults_refuse(fs3_req *r);

#endif
