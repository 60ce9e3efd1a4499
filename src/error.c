/*
 * error.c -- status strings and per-thread error messages.
 *
 * Why per thread and not per index (as sqlite3_errmsg is per connection):
 * an index is shared by many threads at once, and a message stored in the
 * index could be overwritten by another thread between a failing call and
 * the caller reading it. A thread-local buffer has no such race, and it also
 * serves the calls that fail before any index exists (create, load).
 */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>

#define MESSAGE_MAX 512

static _Thread_local char last_message[MESSAGE_MAX];

const char *hnswc_version(void) { return HNSWC_VERSION; }

const char *hnswc_status_string(hnswc_status status) {
    switch (status) {
    case HNSWC_OK: return "ok";
    case HNSWC_ERR_NULL: return "required pointer argument is NULL";
    case HNSWC_ERR_INVALID: return "invalid argument";
    case HNSWC_ERR_NONFINITE: return "vector holds NaN or infinity";
    case HNSWC_ERR_NOT_FOUND: return "label not found";
    case HNSWC_ERR_OVERFLOW: return "size overflow";
    case HNSWC_ERR_NOMEM: return "out of memory";
    case HNSWC_ERR_IO: return "I/O error";
    case HNSWC_ERR_FORMAT: return "file is truncated, corrupted or not an index";
    case HNSWC_ERR_DELETED: return "label is (or is not) marked deleted";
    case HNSWC_ERR_THREAD: return "could not start a thread";
    case HNSWC_ERR_FULL: return "the index holds max_elements elements";
    }
    return "unknown status";
}

hnswc_status hnswc_fail(hnswc_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return status;
}

const char *hnswc_last_message(void) { return last_message; }

const char *hnswc_errmsg(const hnswc_index *index) {
    (void)index; /* messages are per thread: see the comment at the top */
    return last_message;
}
