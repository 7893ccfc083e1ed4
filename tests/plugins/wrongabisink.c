/* wrongabisink.so: a sink built for a future sink ABI; the loader must
 * refuse it with a message naming the file and both versions. */
#include <ferry/sink.h>

static int ws_open(struct ferry_sink_conn *s) { (void)s; return FERRY_OK; }
static void ws_close(struct ferry_sink_conn *s) { (void)s; }
static int ws_write(struct ferry_sink_conn *s, struct ferry_sink_record *r, size_t n)
{
    (void)s; (void)r; (void)n;
    return FERRY_OK;
}
static int ws_commit(struct ferry_sink_conn *s) { (void)s; return FERRY_OK; }
static void ws_abort(struct ferry_sink_conn *s) { (void)s; }
static int ws_health(struct ferry_sink_conn *s, struct ferry_sink_health *h)
{
    (void)s; (void)h;
    return FERRY_OK;
}

static const struct ferry_option ws_options[] = {{0}};
static const struct ferry_sink_ops ws_ops = {
    .size = sizeof(struct ferry_sink_ops), .open = ws_open, .close = ws_close, .write = ws_write,
    .commit = ws_commit, .abort = ws_abort, .health = ws_health};

#define ferry_sink_descriptor wrongabisink_LTX_ferry_sink_descriptor
const struct ferry_sink ferry_sink_descriptor = {
    .abi = FERRY_SINK_ABI + 1, .size = sizeof(struct ferry_sink), .name = "wrongabisink",
    .summary = "Built for another sink ABI (tests only)", .options = ws_options, .ops = &ws_ops};
