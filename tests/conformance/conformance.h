/* ferry-conformance's two suites: transports (conformance.c) and sinks
 * (sink.c). */
#ifndef FERRY_CONFORMANCE_H
#define FERRY_CONFORMANCE_H

#include <ferry/ferry.h>

/* Run the sink suite against sink name configured by cfg (its [NAME]
 * section). verify_cmd (may be NULL) prints the landed ids, one per line,
 * for sinks without a count operation; reject_body (may be NULL) is a body
 * the sink refuses for good, for the per-record case.
 * @return the exit status: 0 all claims verified, 1 a case failed or a
 * claim could not be verified, 69/78 the sink cannot be opened. */
int sink_conformance(const char *name, struct ferry_config *cfg, const char *verify_cmd,
                     const char *reject_body, double scale);

#endif
