/* The programs' option tables: flags, environment, file, --help and docs
 * all come from these rows. */
#include "config.h"
#include "app.h"
#include "http.h"

#include <stddef.h>
#include <string.h>

#define P(f) offsetof(struct producer_cfg, f)
const struct ferry_option app_producer_options[] = {
    {.name = "service", .type = FERRY_OPT_STR, .def = "ferry", .offset = P(service),
     .help = "Service name put in each log envelope and its routing key."},
    {.name = "level", .type = FERRY_OPT_ENUM, .def = "INFO", .offset = P(level),
     .choices = "DEBUG|INFO|WARNING|ERROR|CRITICAL",
     .help = "Level of the log messages sent."},
    {.name = "destination", .type = FERRY_OPT_STR, .def = "logs", .offset = P(destination),
     .help = "Queue, topic or channel the messages go to."},
    {.name = "generate", .type = FERRY_OPT_ENUM, .def = "none", .choices = "none|logs|downloads",
     .offset = P(generate), .help = "Send simulated traffic instead of arguments or stdin lines."},
    {.name = "count", .type = FERRY_OPT_INT, .def = "1000", .min = 0, .max = INT64_MAX,
     .offset = P(count), .help = "How many simulated messages to send (0 = until stopped)."},
    {.name = "rate", .type = FERRY_OPT_INT, .def = "0", .min = 0, .max = 100000000,
     .offset = P(rate), .help = "Simulated messages per second (0 = as fast as possible)."},
    {.name = "invalid_ratio", .type = FERRY_OPT_STR, .def = "0", .offset = P(invalid_ratio),
     .help = "Fraction (0 to 1) of simulated download events made deliberately invalid."},
    {.name = "processing_time", .type = FERRY_OPT_STR, .offset = P(processing_time),
     .help = "Seconds of simulated work each log asks of its consumer (a processing_time field)."},
    {.name = "flush_timeout", .type = FERRY_OPT_DURATION, .def = "5m", .min = 0,
     .max = 86400000, .offset = P(flush_timeout),
     .help = "How long to keep retrying unconfirmed messages before exiting with status 69."},
    {.name = "connect_timeout", .type = FERRY_OPT_DURATION, .def = "5m", .min = 0,
     .max = 86400000, .offset = P(connect_timeout),
     .help = "How long to retry the first connection before exiting with status 69."},
    {.name = "max_inflight", .type = FERRY_OPT_INT, .def = "10000", .min = 1, .max = 10000000,
     .offset = P(max_inflight), .help = "Unconfirmed messages held before sending waits."},
    {.name = "max_message_size", .type = FERRY_OPT_SIZE, .def = "1MiB", .min = 1,
     .max = 1073741824, .offset = P(max_message_size),
     .help = "Larger messages are refused with an error (exit status 65)."},
    {.name = "id_prefix", .type = FERRY_OPT_STR, .offset = P(id_prefix),
     .help = "Make message ids PREFIX-N (sequence numbers) instead of random UUIDs."},
    {.name = "require", .type = FERRY_OPT_STR, .offset = P(require),
     .help = "Capabilities the transport must have, comma separated (e.g. confirms,durable); start-up fails with status 78 otherwise."},
    {.name = "replay", .type = FERRY_OPT_STR, .offset = P(replay),
     .help = "Consume this dead-letter destination and re-publish each message to its x-ferry-original-dest (else x-ferry-source) without the retry headers, acking it once the copy is confirmed."},
    {.name = "replay_group", .type = FERRY_OPT_STR, .def = "ferry-replay", .offset = P(replay_group),
     .help = "With replay: consumer group of the dead-letter destination."},
    {.name = "replay_count", .type = FERRY_OPT_INT, .def = "0", .min = 0, .max = INT64_MAX,
     .offset = P(replay_count), .help = "With replay: stop after this many messages (0 = until drained)."},
    {.name = "replay_wait", .type = FERRY_OPT_DURATION, .def = "5s", .min = 1, .max = 86400000,
     .offset = P(replay_wait),
     .help = "With replay: the destination counts as drained after this long without a message."},
    {0}};
#undef P

#define A(f) offsetof(struct aggregator_cfg, f)
const struct ferry_option app_aggregator_options[] = {
    {.name = "destination", .type = FERRY_OPT_STR, .def = "logs", .offset = A(destination),
     .help = "Queue, topic or channel to consume."},
    {.name = "group", .type = FERRY_OPT_STR, .def = "aggregator", .offset = A(group),
     .help = "Consumer group: aggregators in one group share the stream."},
    {.name = "sink", .type = FERRY_OPT_STR, .def = "file", .offset = A(sink),
     .help = "Sink plugin the messages land in, configured in its own [NAME] section: file, postgresql, grpc, webhook, or any NAME.so on the plugin path."},
    {.name = "output", .type = FERRY_OPT_STR, .def = "aggregated_logs.txt", .offset = A(output),
     .help = "With the file sink: file every message is appended to, one per line; - is standard output (sets [file] output)."},
    {.name = "format", .type = FERRY_OPT_ENUM, .def = "body", .choices = "body|record|text",
     .offset = A(format),
     .help = "With the file sink: each message body as is, a JSON record with destination, key, headers and body, or one human line per log (sets [file] format)."},
    {.name = "id_field", .type = FERRY_OPT_STR, .def = "id", .offset = A(id_field),
     .help = "JSON member of the body that identifies a message, handed to the sink for de-duplication (messages without one use the producer's stamp)."},
    {.name = "dedup", .type = FERRY_OPT_BOOL, .def = "true", .offset = A(dedup),
     .help = "With the file sink: skip messages whose id is already in the output file (sets [file] dedup)."},
    {.name = "dedup_window", .type = FERRY_OPT_INT, .def = "2000000", .min = 1000,
     .max = 1000000000, .offset = A(dedup_window),
     .help = "With the file sink: how many recent ids are remembered for de-duplication (sets [file] dedup_window)."},
    {.name = "count", .type = FERRY_OPT_INT, .def = "0", .min = 0, .max = INT64_MAX,
     .offset = A(count), .help = "Exit after writing this many messages (0 = run until stopped)."},
    {.name = "batch", .type = FERRY_OPT_INT, .def = "500", .min = 1, .max = 100000,
     .offset = A(batch), .help = "Messages written and fsync'ed together before they are acked."},
    {.name = "batch_wait", .type = FERRY_OPT_DURATION, .def = "200ms", .min = 1, .max = 60000,
     .offset = A(batch_wait), .help = "Longest wait for a message before a partial batch is written."},
    {.name = "idle_exit", .type = FERRY_OPT_DURATION, .def = "0", .min = 0, .max = 86400000,
     .offset = A(idle_exit), .help = "Exit 0 after this long without a message (0 = never)."},
    {.name = "fsync", .type = FERRY_OPT_BOOL, .def = "true", .offset = A(fsync),
     .help = "With the file sink: fsync the output before acking each batch (sets [file] fsync; turn off only for benchmarks)."},
    {.name = "connect_timeout", .type = FERRY_OPT_DURATION, .def = "5m", .min = 0,
     .max = 86400000, .offset = A(connect_timeout),
     .help = "How long to retry the first connection before exiting with status 69."},
    {.name = "require", .type = FERRY_OPT_STR, .offset = A(require),
     .help = "Capabilities the transport must have, comma separated (e.g. durable,ack); start-up fails with status 78 otherwise."},
    {.name = "verify", .type = FERRY_OPT_STR, .offset = A(verify),
     .help = "Report the producers' sequence numbers missing from or repeated in this output file, then exit (0 complete, 65 not)."},
    {.name = "expect", .type = FERRY_OPT_INT, .def = "0", .min = 0, .max = INT64_MAX,
     .offset = A(expect),
     .help = "With verify: each producer sent this many messages, so a lost tail counts as missing (0 = unknown)."},
    {.name = "max_retries", .type = FERRY_OPT_INT, .def = "-1", .min = -1, .max = 1000,
     .offset = A(max_retries),
     .help = "Attempts after the first before a message that cannot be written is sent to the dead-letter destination; -1 retries in place forever (nothing is ever diverted, the consumer waits for the fault to clear)."},
    {.name = "retry_backoff_min", .type = FERRY_OPT_DURATION, .def = "100ms", .min = 1,
     .max = 3600000, .offset = A(retry_backoff_min),
     .help = "Delay before the first retry; it doubles with each further attempt."},
    {.name = "retry_backoff_max", .type = FERRY_OPT_DURATION, .def = "10s", .min = 1,
     .max = 86400000, .offset = A(retry_backoff_max),
     .help = "Longest delay between two attempts."},
    {.name = "retry_mode", .type = FERRY_OPT_ENUM, .def = "auto", .choices = "auto|broker|topic|local",
     .offset = A(retry_mode),
     .help = "Where a message waits for its next attempt: broker (RabbitMQ delay queues), topic (DEST.retry, consumed back: Kafka), local (in this process: ZeroMQ); auto picks by transport."},
    {.name = "dead_letter", .type = FERRY_OPT_STR, .offset = A(dead_letter),
     .help = "Destination of messages that failed max_retries + 1 times, with x-ferry-error, x-ferry-attempts and x-ferry-original-dest; default DESTINATION.dead-letter."},
    {0}};
#undef A

#define V(f) offsetof(struct validator_cfg, f)
const struct ferry_option app_validator_options[] = {
    {.name = "input", .type = FERRY_OPT_STR, .def = "events", .offset = V(input),
     .help = "Destination consumed."},
    {.name = "output", .type = FERRY_OPT_STR, .def = "events.valid", .offset = V(output),
     .help = "Destination valid messages are forwarded to, unchanged."},
    {.name = "reject", .type = FERRY_OPT_STR, .def = "events.rejected", .offset = V(reject),
     .help = "Destination invalid messages go to, with the reason in the x-ferry-error header."},
    {.name = "schema", .type = FERRY_OPT_STR, .offset = V(schema),
     .help = "JSON Schema (draft-07) file the messages must satisfy; unset: any well-formed JSON passes."},
    {.name = "schema_path", .type = FERRY_OPT_STR, .offset = V(schema_path),
     .help = "Colon-separated directories searched for schemas referenced by $ref."},
    {.name = "group", .type = FERRY_OPT_STR, .def = "validator", .offset = V(group),
     .help = "Consumer group: validators in one group share the input."},
    {.name = "count", .type = FERRY_OPT_INT, .def = "0", .min = 0, .max = INT64_MAX,
     .offset = V(count), .help = "Exit after handling this many messages (0 = run until stopped)."},
    {.name = "batch", .type = FERRY_OPT_INT, .def = "200", .min = 1, .max = 100000,
     .offset = V(batch), .help = "Messages validated and forwarded together before they are acked."},
    {.name = "idle_exit", .type = FERRY_OPT_DURATION, .def = "0", .min = 0, .max = 86400000,
     .offset = V(idle_exit), .help = "Exit 0 after this long without a message (0 = never)."},
    {.name = "connect_timeout", .type = FERRY_OPT_DURATION, .def = "5m", .min = 0,
     .max = 86400000, .offset = V(connect_timeout),
     .help = "How long to retry the first connection before exiting with status 69."},
    {.name = "publish_timeout", .type = FERRY_OPT_DURATION, .def = "5m", .min = 1,
     .max = 86400000, .offset = V(publish_timeout),
     .help = "How long to retry forwarding a batch before giving up on it (it is redelivered)."},
    {.name = "check", .type = FERRY_OPT_BOOL, .def = "false", .offset = V(check),
     .help = "Validate the files given as arguments (or stdin) locally and exit: 0 valid, 65 invalid."},
    {.name = "max_retries", .type = FERRY_OPT_INT, .def = "-1", .min = -1, .max = 1000,
     .offset = V(max_retries),
     .help = "Attempts after the first before a message that cannot be forwarded goes to the reject destination (with x-ferry-attempts and x-ferry-original-dest); -1 retries in place forever (nothing is ever diverted, the consumer waits for the fault to clear)."},
    {.name = "retry_backoff_min", .type = FERRY_OPT_DURATION, .def = "100ms", .min = 1,
     .max = 3600000, .offset = V(retry_backoff_min),
     .help = "Delay before the first retry; it doubles with each further attempt."},
    {.name = "retry_backoff_max", .type = FERRY_OPT_DURATION, .def = "10s", .min = 1,
     .max = 86400000, .offset = V(retry_backoff_max),
     .help = "Longest delay between two attempts."},
    {.name = "retry_mode", .type = FERRY_OPT_ENUM, .def = "auto", .choices = "auto|broker|topic|local",
     .offset = V(retry_mode),
     .help = "Where a message waits for its next attempt: broker (RabbitMQ delay queues), topic (DEST.retry, consumed back: Kafka), local (in this process: ZeroMQ); auto picks by transport."},
    {0}};
#undef V

const char *const app_sections[] = {"transport", "producer", "aggregator", "validator", "http", "logger", NULL};

const struct ferry_option *app_section_options(const char *section)
{
    if (!strcmp(section, "producer"))
        return app_producer_options;
    if (!strcmp(section, "aggregator"))
        return app_aggregator_options;
    if (!strcmp(section, "validator"))
        return app_validator_options;
    if (!strcmp(section, "transport"))
        return ferry_transport_options;
    if (!strcmp(section, "http"))
        return app_http_options;
    if (!strcmp(section, "logger"))
        return ferry_logger_options;
    return NULL;
}
