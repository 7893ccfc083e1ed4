/* Internal declarations shared by the files of kafka.so (not exported: the
 * module exports only its descriptor). */
#ifndef FKAFKA_H
#define FKAFKA_H

#include <librdkafka/rdkafka.h>

/** Map a librdkafka error code to a ferry_status (FERRY_OK for no error). */
int fkafka_status(rd_kafka_resp_err_t err);

#endif
