/* refuser.so: a per-record sink for tests. It appends each record's id to
 * a file at commit and refuses, alone and for good, every record whose
 * body contains the `refuse` text, with a reason: the per-record case of
 * the sink conformance suite and the consume loop's dead-letter path
 * (tests/e2e/sink-reject.test) run against it. */
#include <ferry/sink.h>

#include <stdlib.h>
#include <string.h>

struct refuser_cfg {
    char *path;
    char *refuse;
};

static const struct ferry_option refuser_options[] = {
    {.name = "path", .type = FERRY_OPT_STR, .def = "refuser.txt",
     .offset = offsetof(struct refuser_cfg, path), .help = "File the landed ids are appended to."},
    {.name = "refuse", .type = FERRY_OPT_STR, .def = "refuse-me",
     .offset = offsetof(struct refuser_cfg, refuse),
     .help = "Records whose body contains this text are refused for good."},
    {0}};

struct refuser {
    FILE *f;
    struct ferry_sink_record *recs; /* the staged batch; borrowed */
    size_t n;
    uint64_t committed, rejected;
};

static int refuser_open(struct ferry_sink_conn *s)
{
    const struct refuser_cfg *cfg = s->cfg;
    struct refuser *r = calloc(1, sizeof *r); /* freed in refuser_close() */
    if (!r)
        return ferry_sink_fail(s, FERRY_E_FATAL, "out of memory");
    r->f = fopen(cfg->path, "a");
    if (!r->f) {
        free(r);
        return ferry_sink_fail(s, FERRY_E_CONFIG, "cannot open %s", cfg->path);
    }
    s->priv = r;
    return FERRY_OK;
}

static void refuser_close(struct ferry_sink_conn *s)
{
    struct refuser *r = s->priv;
    fclose(r->f);
    free(r);
}

static int refuser_write(struct ferry_sink_conn *s, struct ferry_sink_record *recs, size_t n)
{
    struct refuser *r = s->priv;
    r->recs = recs;
    r->n = n;
    return FERRY_OK;
}

static bool has(const struct ferry_msg *m, const char *text)
{
    size_t tl = strlen(text);
    const char *b = m->body;
    for (size_t i = 0; tl && i + tl <= m->body_len; i++)
        if (!memcmp(b + i, text, tl))
            return true;
    return false;
}

static int refuser_commit(struct ferry_sink_conn *s)
{
    struct refuser *r = s->priv;
    const struct refuser_cfg *cfg = s->cfg;
    for (size_t i = 0; i < r->n; i++) {
        if (has(r->recs[i].msg, cfg->refuse)) {
            r->recs[i].status = FERRY_E_REJECTED;
            r->recs[i].reason = "refused by the test sink: the body contains the refused text";
            r->rejected++;
            continue;
        }
        fprintf(r->f, "%s\n", r->recs[i].id ? r->recs[i].id : "");
        r->committed++;
    }
    fflush(r->f);
    r->n = 0;
    return FERRY_OK;
}

static void refuser_abort(struct ferry_sink_conn *s)
{
    struct refuser *r = s->priv;
    r->n = 0;
}

static int refuser_health(struct ferry_sink_conn *s, struct ferry_sink_health *h)
{
    struct refuser *r = s->priv;
    h->state = FERRY_HEALTH_CONNECTED;
    h->committed = r->committed;
    h->rejected = r->rejected;
    return FERRY_OK;
}

static int refuser_count(struct ferry_sink_conn *s, const char *id, uint64_t *out)
{
    const struct refuser_cfg *cfg = s->cfg;
    FILE *f = fopen(cfg->path, "r");
    if (!f)
        return ferry_sink_fail(s, FERRY_E_AGAIN, "cannot read %s", cfg->path);
    char line[512];
    *out = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!strcmp(line, id))
            (*out)++;
    }
    fclose(f);
    return FERRY_OK;
}

static const struct ferry_sink_ops refuser_ops = {
    .size = sizeof(struct ferry_sink_ops), .open = refuser_open, .close = refuser_close,
    .write = refuser_write, .commit = refuser_commit, .abort = refuser_abort,
    .health = refuser_health, .count = refuser_count};

#define ferry_sink_descriptor refuser_LTX_ferry_sink_descriptor
const struct ferry_sink ferry_sink_descriptor = {
    .abi = FERRY_SINK_ABI, .size = sizeof(struct ferry_sink), .name = "refuser",
    .summary = "Refuses records containing a text, lands the rest (tests only)",
    .caps = FERRY_SINK_CAP_TRANSACTIONAL | FERRY_SINK_CAP_PER_RECORD,
    .options = refuser_options, .cfg_size = sizeof(struct refuser_cfg), .ops = &refuser_ops};
