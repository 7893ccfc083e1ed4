/* Encoding and decoding of the zmq plugin's wire formats (version 1:
 * multipart, version 2: one frame); the layout is described in wire.h. */
#include "config.h"

#include "wire.h"

#include <stdio.h>
#include <string.h>

/* Bytes of v as a varint. */
static size_t fzmq_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *fzmq_varint_put(uint8_t *w, uint64_t v)
{
    while (v >= 0x80) {
        *w++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *w++ = (uint8_t)v;
    return w;
}

/* Read a varint at *r (before end); advances *r. */
static bool fzmq_varint_get(const uint8_t **r, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 70 && *r < end; shift += 7) {
        uint8_t b = *(*r)++;
        if (shift == 63 && b > 1)
            return false; /* beyond 64 bits */
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* Read a varint length and that many bytes at *r (before end); advances *r. */
static bool fzmq_span_get(const uint8_t **r, const uint8_t *end, struct fzmq_wire_span *out)
{
    uint64_t n;
    if (!fzmq_varint_get(r, end, &n) || n > (uint64_t)(end - *r))
        return false;
    *out = (struct fzmq_wire_span){*r, (size_t)n};
    *r += n;
    return true;
}

/* a + b, or SIZE_MAX when it overflows (SIZE_MAX then stays). */
static size_t fzmq_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

size_t fzmq_wire_v2_size(const struct ferry_msg *m)
{
    size_t key_len = m->key ? m->key_len : 0;
    size_t n = strlen(m->dest) + 4; /* NUL, marker, version, flags */
    n = fzmq_add(n, fzmq_varint_len(key_len) + key_len);
    n = fzmq_add(n, fzmq_varint_len(m->n_headers));
    for (size_t i = 0; i < m->n_headers; i++) {
        size_t nl = strlen(m->headers[i].name), vl = m->headers[i].value_len;
        n = fzmq_add(n, fzmq_varint_len(nl) + nl);
        n = fzmq_add(n, fzmq_varint_len(vl) + vl);
    }
    n = fzmq_add(n, m->body_len);
    return n == SIZE_MAX ? 0 : n;
}

size_t fzmq_wire_v2_encode(const struct ferry_msg *m, void *buf)
{
    uint8_t *w = buf;
    size_t dl = strlen(m->dest), key_len = m->key ? m->key_len : 0;
    memcpy(w, m->dest, dl);
    w += dl;
    *w++ = 0;
    *w++ = FZMQ_WIRE_MARKER;
    *w++ = FZMQ_WIRE_V2;
    *w++ = 0; /* flags */
    w = fzmq_varint_put(w, key_len);
    if (key_len) {
        memcpy(w, m->key, key_len);
        w += key_len;
    }
    w = fzmq_varint_put(w, m->n_headers);
    for (size_t i = 0; i < m->n_headers; i++) {
        const struct ferry_header *h = &m->headers[i];
        size_t nl = strlen(h->name);
        w = fzmq_varint_put(w, nl);
        memcpy(w, h->name, nl);
        w += nl;
        w = fzmq_varint_put(w, h->value_len);
        if (h->value_len) {
            memcpy(w, h->value, h->value_len);
            w += h->value_len;
        }
    }
    if (m->body_len) {
        memcpy(w, m->body, m->body_len);
        w += m->body_len;
    }
    return (size_t)(w - (uint8_t *)buf);
}

bool fzmq_wire_is_v2(const void *frame, size_t len)
{
    const uint8_t *nul = len ? memchr(frame, 0, len) : NULL;
    return nul && (size_t)(nul - (const uint8_t *)frame) + 1 < len && nul[1] == FZMQ_WIRE_MARKER;
}

/* Header names are non-empty and each given once: anything else does not
 * follow the format (a list of bodies sent as frames, say). */
static int fzmq_check_names(const struct fzmq_wire_view *v, size_t first_frame, char *why,
                            size_t why_len)
{
    for (size_t h = 0; h < v->n_headers; h++) {
        const struct fzmq_wire_span *name = &v->name[h];
        bool dup = false;
        for (size_t k = 0; k < h && !dup; k++)
            dup = v->name[k].len == name->len && !memcmp(v->name[k].data, name->data, name->len);
        if (name->len == 0 || dup) {
            if (first_frame)
                snprintf(why, why_len,
                         "%s header name in frame %zu of %zu (frames: dest, key, "
                         "body, then name/value pairs)",
                         name->len ? "repeated" : "empty", first_frame + 2 * h,
                         first_frame - 1 + 2 * v->n_headers);
            else
                snprintf(why, why_len, "%s header name (header %zu of %zu, wire version 2)",
                         name->len ? "repeated" : "empty", h + 1, v->n_headers);
            return -1;
        }
    }
    return 0;
}

int fzmq_wire_v2_decode(const void *frame, size_t len, struct fzmq_wire_view *out, char *why,
                        size_t why_len)
{
    const uint8_t *r = frame, *end = r + len, *nul = memchr(frame, 0, len);
    memset(out, 0, offsetof(struct fzmq_wire_view, name));
    why[0] = '\0';
    /* fzmq_wire_is_v2() holds: a NUL and the marker after it */
    out->dest = (struct fzmq_wire_span){r, (size_t)(nul - r)};
    r = nul + 2;
    if (end - r < 2) {
        snprintf(why, why_len, "wire version 2 frame of %zu bytes ends in its header", len);
        return -1;
    }
    if (r[0] != FZMQ_WIRE_V2) {
        snprintf(why, why_len, "wire version %u is not known here (this reader knows 1 and 2)",
                 r[0]);
        return -1;
    }
    if (r[1] != 0) {
        snprintf(why, why_len, "wire version 2 flags 0x%02x are not known here", r[1]);
        return -1;
    }
    r += 2;
    uint64_t n;
    if (!fzmq_span_get(&r, end, &out->key) || !fzmq_varint_get(&r, end, &n))
        goto cut;
    if (n > FZMQ_WIRE_MAX_HEADERS) {
        snprintf(why, why_len, "more than %d headers", FZMQ_WIRE_MAX_HEADERS);
        return -1;
    }
    out->n_headers = (size_t)n;
    for (size_t h = 0; h < out->n_headers; h++)
        if (!fzmq_span_get(&r, end, &out->name[h]) || !fzmq_span_get(&r, end, &out->value[h]))
            goto cut;
    out->body = (struct fzmq_wire_span){r, (size_t)(end - r)};
    return fzmq_check_names(out, 0, why, why_len);
cut:
    snprintf(why, why_len,
             "wire version 2 frame of %zu bytes is cut short or has a bad length at byte %zu", len,
             (size_t)(r - (const uint8_t *)frame));
    return -1;
}

int fzmq_wire_v1_view(const struct fzmq_wire_span *fr, size_t n, struct fzmq_wire_view *out,
                      char *why, size_t why_len)
{
    memset(out, 0, offsetof(struct fzmq_wire_view, name));
    why[0] = '\0';
    if (n > 3 && (n - 3) % 2 != 0) {
        snprintf(why, why_len,
                 "header frame without a value (%zu frames: dest, key, body "
                 "and name/value pairs make an odd number)",
                 n);
        return -1;
    }
    if (n > 3 + 2 * FZMQ_WIRE_MAX_HEADERS) {
        snprintf(why, why_len, "more than %d headers", FZMQ_WIRE_MAX_HEADERS);
        return -1;
    }
    /* 1 frame: body; 2: dest, body; 3 or more: dest, key, body, name/value pairs */
    if (n >= 2)
        out->dest = fr[0];
    if (n >= 3)
        out->key = fr[1];
    out->body = fr[n == 1 ? 0 : n == 2 ? 1 : 2];
    out->n_headers = n > 3 ? (n - 3) / 2 : 0;
    for (size_t h = 0; h < out->n_headers; h++) {
        out->name[h] = fr[3 + 2 * h];
        out->value[h] = fr[4 + 2 * h];
    }
    return fzmq_check_names(out, 4, why, why_len);
}
