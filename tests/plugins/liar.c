/* liar.so: a sink that claims to be transactional, idempotent and durable
 * but is none of the first two: write() appends every id to a file at
 * once, abort() takes nothing back and nothing is de-duplicated. The sink
 * conformance suite must fail it (tests/conformance/sink-liar.test). */
#include <ferry/sink.h>

#include <stdlib.h>
#include <string.h>

struct liar_cfg {
    char *path;
};

static const struct ferry_option liar_options[] = {
    {.name = "path", .type = FERRY_OPT_STR, .def = "liar.txt",
     .offset = offsetof(struct liar_cfg, path), .help = "File the ids are appended to."},
    {0}};

static int liar_open(struct ferry_sink_conn *s)
{
    const struct liar_cfg *cfg = s->cfg;
    FILE *f = fopen(cfg->path, "a");
    if (!f)
        return ferry_sink_fail(s, FERRY_E_CONFIG, "cannot open %s", cfg->path);
    s->priv = f;
    return FERRY_OK;
}

static void liar_close(struct ferry_sink_conn *s)
{
    fclose(s->priv);
}

static int liar_write(struct ferry_sink_conn *s, struct ferry_sink_record *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        fprintf(s->priv, "%s\n", r[i].id ? r[i].id : "");
    fflush(s->priv);
    return FERRY_OK;
}

static int liar_commit(struct ferry_sink_conn *s)
{
    (void)s;
    return FERRY_OK;
}

static void liar_abort(struct ferry_sink_conn *s)
{
    (void)s;
}

static int liar_health(struct ferry_sink_conn *s, struct ferry_sink_health *h)
{
    (void)s;
    h->state = FERRY_HEALTH_CONNECTED;
    return FERRY_OK;
}

static int liar_count(struct ferry_sink_conn *s, const char *id, uint64_t *out)
{
    const struct liar_cfg *cfg = s->cfg;
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

static const struct ferry_sink_ops liar_ops = {
    .size = sizeof(struct ferry_sink_ops), .open = liar_open, .close = liar_close,
    .write = liar_write, .commit = liar_commit, .abort = liar_abort, .health = liar_health,
    .count = liar_count};

#define ferry_sink_descriptor liar_LTX_ferry_sink_descriptor
const struct ferry_sink ferry_sink_descriptor = {
    .abi = FERRY_SINK_ABI, .size = sizeof(struct ferry_sink), .name = "liar",
    .summary = "Claims transactional and idempotent, is neither (tests only)",
    .caps = FERRY_SINK_CAP_TRANSACTIONAL | FERRY_SINK_CAP_IDEMPOTENT | FERRY_SINK_CAP_DURABLE,
    .options = liar_options, .cfg_size = sizeof(struct liar_cfg), .ops = &liar_ops};
