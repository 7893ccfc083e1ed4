/* zmq reliable mode (reliable = true): sequence numbers, consumer acks over
 * a DEALER/ROUTER pair, resends and the producer-side spool. zmq.c encodes
 * and decodes the data frames; this part adds one frame in front of them
 * and keeps what is unacknowledged. Wire format: plugins/zmq/README.md. */
#ifndef FZMQ_RELIABLE_H
#define FZMQ_RELIABLE_H

#include <ferry/transport.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FZREL_HDR_LEN 10 /* 'D', flags, 8-byte sequence number (big-endian) */
#define FZREL_FLAG_RESENT 0x01

/* One frame of a data message as the encode path made it (borrowed). */
struct fzrel_frame {
    const void *data;
    size_t len;
};

struct fzrel_opts {
    int64_t ack_timeout_ms; /* resend what is not acked after this long */
    int64_t max_unacked;    /* publish says "again" beyond this many */
    const char *spool_dir;  /* NULL: unacked messages are kept in memory only */
    int64_t spool_max;
    int spool_fsync; /* enum ferry_spool_sync_mode */
    int64_t spool_fsync_interval_ms;
    int spool_full; /* FZREL_FULL_* */
};

enum { FZREL_FULL_BLOCK = 0, FZREL_FULL_DROP_NEWEST };

/* What zmq.c lends to the reliable part: the DEALER socket of a
 * destination (created on first use; a ferry status with c->err set when
 * it cannot be made), and a look at every socket's monitor, which calls
 * fzrel_peer_event(). */
struct fzrel_hooks {
    int (*sock_for)(struct ferry_conn *c, const char *dest, void **sock);
    void (*upkeep)(struct ferry_conn *c);
    long (*peers)(struct ferry_conn *c); /* consumers connected now, over every socket */
};

struct fzrel;

/** Producer side. Open the spool (when opts->spool_dir is set) and take
 *  back what an earlier run left unacknowledged; it is sent again once a
 *  consumer is there. @return FERRY_OK with *out set (freed by
 *  fzrel_close()), or FERRY_E_CONFIG / FERRY_E_FATAL with c->err set. */
int fzrel_open(struct ferry_conn *c, const struct fzrel_opts *opts, const struct fzrel_hooks *hooks,
               struct fzrel **out);
/** Wait up to linger_ms for the acks still missing, while a consumer is
 *  connected, then free r. What is still unacked stays in the spool (or is
 *  lost without one: logged). */
void fzrel_close(struct ferry_conn *c, struct fzrel *r, int64_t linger_ms);
/** Keep one message (frames f[0..n), borrowed) until a consumer acks it,
 *  and send it now when the socket takes it. @return FERRY_OK (the report
 *  for tag comes with the ack), FERRY_E_AGAIN when max_unacked or the
 *  spool (spool_full = block) is full, FERRY_E_REJECTED when the spool is
 *  full with spool_full = drop_newest, another error with c->err set. */
int fzrel_publish(struct ferry_conn *c, struct fzrel *r, const char *dest, uint64_t tag,
                  const struct fzrel_frame *f, size_t n);
/** Read acks, report what they settle and resend what is due. With
 *  timeout_ms != 0, wait up to it (negative: no limit) until nothing is
 *  unacked, or until some acks settled messages (so that a publisher
 *  waiting for room goes on at once). @return FERRY_OK when nothing is
 *  unacked, FERRY_E_TIMEOUT otherwise. */
int fzrel_pump(struct ferry_conn *c, struct fzrel *r, int timeout_ms);
/** A peer of sock came (up) or went: everything unacked that went out on
 *  sock is sent again at the next chance. */
void fzrel_peer_event(struct fzrel *r, void *sock, bool up);
uint64_t fzrel_unacked(const struct fzrel *r);
uint64_t fzrel_dropped(const struct fzrel *r);

/* Consumer side: the ROUTER's peers and the acks owed to them. */
struct fzrel_in;

struct fzrel_in *fzrel_in_new(void);
/** Strip the routing id and the reliable header from a received message
 *  (fr[0..n)). @return how many leading frames to skip (2) with *peer and
 *  *seq set, *resent when the producer sent it before; 0 when it is not a
 *  reliable data message (dropped by the caller, *why says why). */
size_t fzrel_in_strip(struct fzrel_in *in, const void *const *data, const size_t *len, size_t n,
                      uint32_t *peer, uint64_t *seq, bool *resent, const char **why);
/** Owe peer an ack for seq; sent by fzrel_in_flush(). @return FERRY_OK or
 *  FERRY_E_AGAIN (out of memory: the message comes again). */
int fzrel_in_ack(struct fzrel_in *in, uint32_t peer, uint64_t seq);
/** A message of peer ends without an ack (released, or dropped at close). */
void fzrel_in_forget(struct fzrel_in *in, uint32_t peer);
/** Send the acks owed, on the ROUTER sock, without blocking. Acks for a
 *  peer that has gone are dropped (its producer resends; duplicates are
 *  marked redelivered). */
void fzrel_in_flush(struct fzrel_in *in, void *sock);
/** Acks owed and not yet sent. */
size_t fzrel_in_owed(const struct fzrel_in *in);
void fzrel_in_free(struct fzrel_in *in);

#endif
