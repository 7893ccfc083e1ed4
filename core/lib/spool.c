/* The on-disk spool of the logger and of the zmq plugin's reliable mode:
 * records appended to numbered segment files, read back in order, and
 * dropped segment by segment once delivery is confirmed; a commit file
 * remembers how far delivery got. Self-contained (a convenience library
 * linked into libferry and into zmq.so), so it uses no libferry helper. */
#include "config.h"
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t spool_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void spool_fmt(char *buf, size_t len, const char *fmt, ...) FERRY_SPOOL_PRINTF(3, 4);
static void spool_fmt(char *buf, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, len, fmt, ap);
    va_end(ap);
}

/* Record: u32 key length, u32 body length, u32 checksum of both lengths and
 * the payload, then key and body. A torn or zeroed tail fails the checksum. */
#define REC_HDR 12u
#define CHUNK (256u * 1024u)

struct seg {
    uint64_t id;
    int64_t size; /* bytes written to the file */
};

struct ferry_spool {
    char *dir; /* owned */
    int lockfd;
    int64_t max_bytes, seg_max;
    int fsync_mode;
    int64_t fsync_ms, last_sync_ms, last_commit_ms;
    struct seg *segs; /* live segments, oldest first; owned */
    size_t nsegs, capsegs;
    int wfd;    /* last segment, appended to */
    char *wbuf; /* records not yet written; owned */
    size_t wlen, wcap;
    bool unsynced;
    uint64_t rseg; /* reader: next record at (rseg, roff) */
    int64_t roff;
    int rfd;
    char *chunk; /* bytes [chunk_off, chunk_off + chunk_len) of rseg; owned */
    size_t chunk_len, chunk_cap;
    int64_t chunk_off;
    uint64_t chunk_seg;
    struct ferry_spool_pos commit, saved;
    uint64_t records;
    int64_t bytes;
};

static uint32_t rec_sum(uint32_t klen, uint32_t blen, const void *key, const void *body)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    const unsigned char lens[8] = {(unsigned char)klen,         (unsigned char)(klen >> 8),
                                   (unsigned char)(klen >> 16), (unsigned char)(klen >> 24),
                                   (unsigned char)blen,         (unsigned char)(blen >> 8),
                                   (unsigned char)(blen >> 16), (unsigned char)(blen >> 24)};
    for (size_t i = 0; i < 8; i++)
        h = (h ^ lens[i]) * 16777619u;
    for (const unsigned char *p = key, *e = p + klen; p < e; p++)
        h = (h ^ *p) * 16777619u;
    for (const unsigned char *p = body, *e = p + blen; p < e; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static void put32(char *p, uint32_t v)
{
    memcpy(p, &v, 4);
}

static uint32_t get32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static void seg_path(const struct ferry_spool *s, uint64_t id, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%016" PRIx64 ".seg", s->dir, id);
}

static int seg_open(const struct ferry_spool *s, uint64_t id, int flags)
{
    char path[4096];
    seg_path(s, id, path, sizeof path);
    return open(path, flags | O_CLOEXEC, 0600);
}

static struct seg *seg_find(struct ferry_spool *s, uint64_t id)
{
    for (size_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].id == id)
            return &s->segs[i];
    return NULL;
}

static int seg_push(struct ferry_spool *s, uint64_t id, int64_t size)
{
    if (s->nsegs == s->capsegs) {
        size_t n = s->capsegs ? s->capsegs * 2 : 16;
        struct seg *ns = realloc(s->segs, n * sizeof *ns); /* freed in ferry_spool_close() */
        if (!ns)
            return -1;
        s->segs = ns;
        s->capsegs = n;
    }
    s->segs[s->nsegs++] = (struct seg){id, size};
    return 0;
}

static struct seg *last_seg(struct ferry_spool *s)
{
    return &s->segs[s->nsegs - 1];
}

static int cmp_seg(const void *a, const void *b)
{
    const struct seg *x = a, *y = b;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Commit file: u64 segment, i64 offset, u64 check. */
static void commit_write(struct ferry_spool *s, bool sync)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/commit", s->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return; /* a stale commit only means redelivery after a crash */
    uint64_t rec[3] = {s->commit.seg, (uint64_t)s->commit.off,
                       (s->commit.seg * 0x9E3779B97F4A7C15ull) ^ (uint64_t)s->commit.off ^
                           0x5350304f4c464552ull};
    if (pwrite(fd, rec, sizeof rec, 0) == (ssize_t)sizeof rec && sync)
        fdatasync(fd);
    close(fd);
    s->saved = s->commit;
    s->last_commit_ms = spool_mono_ms();
}

static bool commit_read(struct ferry_spool *s, struct ferry_spool_pos *out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/commit", s->dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    uint64_t rec[3];
    bool ok = read(fd, rec, sizeof rec) == (ssize_t)sizeof rec &&
              rec[2] == ((rec[0] * 0x9E3779B97F4A7C15ull) ^ rec[1] ^ 0x5350304f4c464552ull);
    close(fd);
    if (ok)
        *out = (struct ferry_spool_pos){rec[0], (int64_t)rec[1]};
    return ok;
}

/* Walk the records of segment g and cut a torn tail. Counts the records
 * that start at or after *from, moving *from to a record boundary. */
static int seg_scan(struct ferry_spool *s, struct seg *g, int64_t *from, uint64_t *count, char *err,
                    size_t errlen)
{
    int64_t off = 0;
    bool placed = false;
    int fd = seg_open(s, g->id, O_RDWR);
    if (fd < 0) {
        spool_fmt(err, errlen, "cannot open spool segment in %s: %s", s->dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        spool_fmt(err, errlen, "cannot stat spool segment in %s: %s", s->dir, strerror(errno));
        return -1;
    }
    char *buf = NULL; /* freed below */
    size_t cap = 0;
    int64_t end = st.st_size;
    while (off + (int64_t)REC_HDR <= end) {
        char h[REC_HDR];
        if (pread(fd, h, REC_HDR, off) != (ssize_t)REC_HDR)
            break;
        uint32_t kl = get32(h), bl = get32(h + 4);
        int64_t rl = (int64_t)REC_HDR + kl + bl;
        if (off + rl > end)
            break;
        if ((size_t)(kl + (uint64_t)bl) > cap) {
            char *nb = realloc(buf, (size_t)kl + bl);
            if (!nb)
                break;
            buf = nb;
            cap = (size_t)kl + bl;
        }
        if (pread(fd, buf, (size_t)kl + bl, off + REC_HDR) != (ssize_t)(kl + (uint64_t)bl) ||
            rec_sum(kl, bl, buf, buf + kl) != get32(h + 8))
            break;
        if (off >= *from) {
            if (!placed)
                *from = off;
            placed = true;
            (*count)++;
        }
        off += rl;
    }
    free(buf);
    if (!placed)
        *from = off;
    if (off < end && ftruncate(fd, off)) {
        close(fd);
        spool_fmt(err, errlen, "cannot cut a torn record in %s: %s", s->dir, strerror(errno));
        return -1;
    }
    close(fd);
    g->size = off;
    return 0;
}

static int open_writer(struct ferry_spool *s, char *err, size_t errlen)
{
    s->wfd = seg_open(s, last_seg(s)->id, O_WRONLY | O_CREAT | O_APPEND);
    if (s->wfd < 0) {
        spool_fmt(err, errlen, "cannot create a spool segment in %s: %s", s->dir, strerror(errno));
        return -1;
    }
    return 0;
}

struct ferry_spool *ferry_spool_open(const char *dir, int64_t max_bytes, int fsync_mode,
                                     int64_t fsync_interval_ms, uint64_t *recovered, char *err,
                                     size_t errlen)
{
    struct ferry_spool *s = calloc(1, sizeof *s); /* freed in ferry_spool_close() */
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        spool_fmt(err, errlen, "out of memory");
        return NULL;
    }
    s->lockfd = s->wfd = s->rfd = -1;
    s->max_bytes = max_bytes;
    s->seg_max = max_bytes / 8;
    if (s->seg_max < 64 * 1024)
        s->seg_max = 64 * 1024;
    if (s->seg_max > 64 * 1024 * 1024)
        s->seg_max = 64 * 1024 * 1024;
    s->fsync_mode = fsync_mode;
    s->fsync_ms = fsync_interval_ms;
    s->last_sync_ms = s->last_commit_ms = spool_mono_ms();
    *recovered = 0;

    char path[4096];
    if (mkdir(dir, 0700) && errno != EEXIST) {
        spool_fmt(err, errlen, "cannot create spool directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/lock", dir);
    s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (s->lockfd < 0) {
        spool_fmt(err, errlen, "cannot open %s: %s", path, strerror(errno));
        goto fail;
    }
    if (flock(s->lockfd, LOCK_EX | LOCK_NB)) {
        spool_fmt(err, errlen, "spool directory %s is in use by another process", dir);
        goto fail;
    }
    DIR *d = opendir(dir);
    if (!d) {
        spool_fmt(err, errlen, "cannot read spool directory %s: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        char *end;
        if (strlen(de->d_name) != 20 || strcmp(de->d_name + 16, ".seg"))
            continue;
        uint64_t id = strtoull(de->d_name, &end, 16);
        if (end != de->d_name + 16)
            continue;
        if (seg_push(s, id, 0)) {
            closedir(d);
            spool_fmt(err, errlen, "out of memory");
            goto fail;
        }
    }
    closedir(d);
    if (s->nsegs > 1)
        qsort(s->segs, s->nsegs, sizeof *s->segs, cmp_seg);

    struct ferry_spool_pos c = {0, 0};
    if (!commit_read(s, &c) || (s->nsegs && c.seg < s->segs[0].id))
        c = (struct ferry_spool_pos){s->nsegs ? s->segs[0].id : 1, 0};
    /* segments wholly before the commit were delivered */
    size_t keep = 0;
    for (size_t i = 0; i < s->nsegs; i++) {
        if (s->segs[i].id < c.seg) {
            seg_path(s, s->segs[i].id, path, sizeof path);
            unlink(path);
        } else {
            s->segs[keep++] = s->segs[i];
        }
    }
    s->nsegs = keep;
    if (!s->nsegs || s->segs[0].id != c.seg) {
        /* the commit's own segment is gone: everything before the next was delivered */
        if (s->nsegs)
            c = (struct ferry_spool_pos){s->segs[0].id, 0};
        else if (seg_push(s, c.seg ? c.seg : 1, 0)) {
            spool_fmt(err, errlen, "out of memory");
            goto fail;
        }
    }
    if (open_writer(s, err, errlen))
        goto fail;
    for (size_t i = 0; i < s->nsegs; i++) {
        struct seg *g = &s->segs[i];
        int64_t from = g->id == c.seg ? c.off : 0;
        if (seg_scan(s, g, &from, recovered, err, errlen))
            goto fail;
        if (g->id == c.seg)
            c.off = from;
        s->bytes += g->size;
    }
    s->commit = s->saved = c;
    s->records = *recovered;
    s->rseg = c.seg;
    s->roff = c.off;
    return s;
fail:
    if (s->wfd >= 0)
        close(s->wfd);
    if (s->lockfd >= 0)
        close(s->lockfd);
    free(s->segs);
    free(s->dir);
    free(s);
    return NULL;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int flush_buf(struct ferry_spool *s, char *err, size_t errlen)
{
    if (!s->wlen)
        return 0;
    if (write_all(s->wfd, s->wbuf, s->wlen)) {
        /* leave no partial record behind: cut back to what was there */
        int e = errno;
        if (ftruncate(s->wfd, last_seg(s)->size)) {
            /* the scan at the next open cuts it instead */
        }
        spool_fmt(err, errlen, "cannot write the spool in %s: %s", s->dir, strerror(e));
        return -1;
    }
    last_seg(s)->size += (int64_t)s->wlen;
    s->wlen = 0;
    s->unsynced = true;
    return 0;
}

static void do_sync(struct ferry_spool *s)
{
    if (s->unsynced && s->fsync_mode != FERRY_SPOOL_SYNC_NEVER)
        fdatasync(s->wfd);
    s->unsynced = false;
    s->last_sync_ms = spool_mono_ms();
}

int ferry_spool_sync(struct ferry_spool *s, bool force, char *err, size_t errlen)
{
    if (flush_buf(s, err, errlen))
        return -1;
    if (!s->unsynced)
        return 0;
    if (force || s->fsync_mode == FERRY_SPOOL_SYNC_ALWAYS ||
        (s->fsync_mode == FERRY_SPOOL_SYNC_BATCH &&
         spool_mono_ms() - s->last_sync_ms >= s->fsync_ms))
        do_sync(s);
    return 0;
}

static int roll(struct ferry_spool *s, char *err, size_t errlen)
{
    if (flush_buf(s, err, errlen))
        return -1;
    do_sync(s);
    uint64_t next = last_seg(s)->id + 1;
    if (seg_push(s, next, 0)) {
        spool_fmt(err, errlen, "out of memory");
        return -1;
    }
    int old = s->wfd;
    if (open_writer(s, err, errlen)) {
        s->nsegs--;
        s->wfd = old;
        return -1;
    }
    close(old);
    if (s->fsync_mode != FERRY_SPOOL_SYNC_NEVER) { /* make the new name durable */
        int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return 0;
}

int ferry_spool_append(struct ferry_spool *s, const void *key, size_t klen, const void *body,
                       size_t blen, char *err, size_t errlen)
{
    size_t rl = REC_HDR + klen + blen;
    if (klen > UINT32_MAX || blen > UINT32_MAX || s->bytes + (int64_t)rl > s->max_bytes)
        return 1;
    int64_t in_seg = last_seg(s)->size + (int64_t)s->wlen;
    if (in_seg > 0 && in_seg + (int64_t)rl > s->seg_max && roll(s, err, errlen))
        return -1;
    if (s->wlen + rl > s->wcap) {
        size_t n = s->wcap ? s->wcap : 64 * 1024;
        while (n < s->wlen + rl)
            n *= 2;
        char *nb = realloc(s->wbuf, n); /* freed in ferry_spool_close() */
        if (!nb) {
            spool_fmt(err, errlen, "out of memory");
            return -1;
        }
        s->wbuf = nb;
        s->wcap = n;
    }
    char *w = s->wbuf + s->wlen;
    put32(w, (uint32_t)klen);
    put32(w + 4, (uint32_t)blen);
    put32(w + 8, rec_sum((uint32_t)klen, (uint32_t)blen, key, body));
    if (klen)
        memcpy(w + REC_HDR, key, klen);
    if (blen)
        memcpy(w + REC_HDR + klen, body, blen);
    s->wlen += rl;
    s->bytes += (int64_t)rl;
    s->records++;
    if (s->wlen >= 1024 * 1024)
        return flush_buf(s, err, errlen);
    return 0;
}

/* Make [off, off + need) of rseg available in the chunk. */
static int fill(struct ferry_spool *s, int64_t off, size_t need, char *err, size_t errlen)
{
    if (s->chunk_seg == s->rseg && off >= s->chunk_off &&
        off + (int64_t)need <= s->chunk_off + (int64_t)s->chunk_len)
        return 0;
    size_t want = need > CHUNK ? need : CHUNK;
    if (want > s->chunk_cap) {
        char *nb = realloc(s->chunk, want); /* freed in ferry_spool_close() */
        if (!nb) {
            spool_fmt(err, errlen, "out of memory");
            return -1;
        }
        s->chunk = nb;
        s->chunk_cap = want;
    }
    ssize_t r = pread(s->rfd, s->chunk, want, off);
    if (r < 0) {
        spool_fmt(err, errlen, "cannot read the spool in %s: %s", s->dir, strerror(errno));
        return -1;
    }
    s->chunk_seg = s->rseg;
    s->chunk_off = off;
    s->chunk_len = (size_t)r;
    if ((size_t)r < need) {
        spool_fmt(err, errlen, "spool segment in %s is shorter than recorded", s->dir);
        return -1;
    }
    return 0;
}

int ferry_spool_next(struct ferry_spool *s, const char **key, size_t *klen, const char **body,
                     size_t *blen, struct ferry_spool_pos *pos, char *err, size_t errlen)
{
    for (;;) {
        struct seg *g = seg_find(s, s->rseg);
        if (!g)
            return 0;
        if (s->roff < g->size)
            break;
        if (g == last_seg(s))
            return 0;
        s->rseg = g[1].id;
        s->roff = 0;
        if (s->rfd >= 0)
            close(s->rfd);
        s->rfd = -1;
    }
    if (s->rfd < 0 && (s->rfd = seg_open(s, s->rseg, O_RDONLY)) < 0) {
        spool_fmt(err, errlen, "cannot open spool segment in %s: %s", s->dir, strerror(errno));
        return -1;
    }
    if (fill(s, s->roff, REC_HDR, err, errlen))
        return -1;
    const char *h = s->chunk + (s->roff - s->chunk_off);
    uint32_t kl = get32(h), bl = get32(h + 4);
    size_t rl = REC_HDR + (size_t)kl + bl;
    if (fill(s, s->roff, rl, err, errlen))
        return -1;
    h = s->chunk + (s->roff - s->chunk_off);
    *key = h + REC_HDR;
    *klen = kl;
    *body = h + REC_HDR + kl;
    *blen = bl;
    s->roff += (int64_t)rl;
    *pos = (struct ferry_spool_pos){s->rseg, s->roff};
    return 1;
}

void ferry_spool_confirm(struct ferry_spool *s, struct ferry_spool_pos pos, uint64_t n, bool force)
{
    s->commit = pos;
    s->records = n > s->records ? 0 : s->records - n;
    bool dropped = false;
    while (s->nsegs > 1 && s->segs[0].id < pos.seg) {
        if (!dropped) /* the commit file must point past a segment before it goes */
            commit_write(s, s->fsync_mode != FERRY_SPOOL_SYNC_NEVER);
        dropped = true;
        char path[4096];
        seg_path(s, s->segs[0].id, path, sizeof path);
        unlink(path);
        s->bytes -= s->segs[0].size;
        memmove(s->segs, s->segs + 1, (s->nsegs - 1) * sizeof *s->segs);
        s->nsegs--;
    }
    if (!dropped && (s->commit.seg != s->saved.seg || s->commit.off != s->saved.off) &&
        (force || spool_mono_ms() - s->last_commit_ms >= (s->fsync_ms > 100 ? s->fsync_ms : 100)))
        commit_write(s, s->fsync_mode != FERRY_SPOOL_SYNC_NEVER);
}

void ferry_spool_rewind(struct ferry_spool *s)
{
    if (s->rseg != s->commit.seg && s->rfd >= 0) {
        close(s->rfd);
        s->rfd = -1;
    }
    s->rseg = s->commit.seg;
    s->roff = s->commit.off;
}

uint64_t ferry_spool_records(const struct ferry_spool *s)
{
    return s->records;
}

int64_t ferry_spool_bytes(const struct ferry_spool *s)
{
    return s->bytes;
}

void ferry_spool_close(struct ferry_spool *s)
{
    if (!s)
        return;
    char err[256];
    if (ferry_spool_sync(s, true, err, sizeof err)) {
        /* the caller has already counted these records as spooled; the
         * next open's scan finds whatever reached the file */
    }
    commit_write(s, s->fsync_mode != FERRY_SPOOL_SYNC_NEVER);
    if (s->wfd >= 0)
        close(s->wfd);
    if (s->rfd >= 0)
        close(s->rfd);
    if (s->lockfd >= 0)
        close(s->lockfd);
    free(s->segs);
    free(s->wbuf);
    free(s->chunk);
    free(s->dir);
    free(s);
}
