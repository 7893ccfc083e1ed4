/* The zmq plugin's wire formats: version 1 (one ZeroMQ frame per field) and
 * version 2 (the whole message in one frame behind a small binary header).
 * Pure byte work, no libzmq: unit-tested by tests/unit/check_zmq_wire.c.
 * The formats are described for other languages in plugins/zmq/README.md.
 *
 * Version 2, one frame:
 *   dest      the destination, UTF-8 without NUL; the pubsub topic, so that
 *             a SUB socket's prefix filter works as with version 1
 *   0x00      end of the destination
 *   0xFF      marker (never part of UTF-8 text, so a plain text body is not
 *             taken for a version 2 frame)
 *   0x02      version
 *   flags     0; a reader drops a frame with a flag it does not know
 *   varint    key length, then the key
 *   varint    header count, then per header: varint name length, name,
 *             varint value length, value
 *   body      the rest of the frame
 * Varints are unsigned LEB128: 7 bits per byte, least significant first,
 * the high bit set on every byte but the last; at most 10 bytes. */
#ifndef FZMQ_WIRE_H
#define FZMQ_WIRE_H

#include <ferry/transport.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FZMQ_WIRE_MARKER 0xFF
#define FZMQ_WIRE_V2 2
#define FZMQ_WIRE_MAX_HEADERS 256

/* A run of bytes inside a received frame (not NUL-terminated). */
struct fzmq_wire_span {
    const void *data;
    size_t len;
};

/* A received message as spans into its frames: valid while the frames are.
 * dest.data is NULL when the sender named no destination (a one-frame
 * plain body); key.len is 0 when there is no key. */
struct fzmq_wire_view {
    struct fzmq_wire_span dest, key, body;
    size_t n_headers;
    struct fzmq_wire_span name[FZMQ_WIRE_MAX_HEADERS], value[FZMQ_WIRE_MAX_HEADERS];
};

/**
 * Bytes of m encoded as one version 2 frame (m->dest must be a non-empty
 * string without NUL, m->n_headers at most FZMQ_WIRE_MAX_HEADERS).
 * @return the size; 0 if it would not fit in a size_t.
 */
size_t fzmq_wire_v2_size(const struct ferry_msg *m);

/**
 * Encode m into buf, which holds fzmq_wire_v2_size(m) bytes (the caller's,
 * e.g. a zmq_msg_t's data).
 * @return the number of bytes written, fzmq_wire_v2_size(m).
 */
size_t fzmq_wire_v2_encode(const struct ferry_msg *m, void *buf);

/**
 * Whether a single frame is meant as version 2 or later: a NUL that ends a
 * destination, then the marker byte. Other single frames are plain bodies.
 */
bool fzmq_wire_is_v2(const void *frame, size_t len);

/**
 * Read one frame that fzmq_wire_is_v2() accepted into *out (spans into
 * frame).
 * @return 0; -1 when the frame is malformed or of an unknown version or
 *         flag, with the reason in why (always NUL-terminated).
 */
int fzmq_wire_v2_decode(const void *frame, size_t len, struct fzmq_wire_view *out, char *why,
                        size_t why_len);

/**
 * Read a version 1 message from its n frames (n >= 1): 1 frame is the body
 * (a plain peer); 2 are destination and body; 3 or more are destination,
 * key, body and name/value pairs. A version 2 frame is not recognised
 * here: check fzmq_wire_is_v2() first when n == 1.
 * @return 0; -1 with the reason in why when the frames do not follow the
 *         format (a name without a value, an empty or repeated name, more
 *         than FZMQ_WIRE_MAX_HEADERS headers).
 */
int fzmq_wire_v1_view(const struct fzmq_wire_span *frames, size_t n, struct fzmq_wire_view *out,
                      char *why, size_t why_len);

#endif /* FZMQ_WIRE_H */
