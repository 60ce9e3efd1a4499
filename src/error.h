/*
 * error.h -- the error module (error.c): status strings and the per-thread
 * last message behind hnswc_errmsg.
 *
 * Prefix: hnswc_ (the module also implements the public hnswc_status_string,
 * hnswc_errmsg and hnswc_version). Included by every module that fails.
 */
#ifndef HNSWC_ERROR_H
#define HNSWC_ERROR_H

#include "hnswc.h"

/*
 * Records `status` with a printf-style message as the calling thread's last
 * error and returns status, so that a failure reads `return hnswc_fail(...)`.
 */
hnswc_status hnswc_fail(hnswc_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* The calling thread's last message, for copying it to another thread. */
const char *hnswc_last_message(void);

#endif /* HNSWC_ERROR_H */
