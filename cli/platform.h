/*
 * platform.h -- the two facts the tool asks the operating system for: a
 * monotonic clock (progress, timings) and the number of online CPUs (thread
 * counts). Thread safe.
 */
#ifndef HNSWC_CLI_PLATFORM_H
#define HNSWC_CLI_PLATFORM_H

/* Number of online CPUs (at least 1). */
unsigned cli_num_cpus(void);

/* Seconds on a monotonic clock (CLOCK_MONOTONIC: never jumps with the date). */
double cli_now(void);

#endif /* HNSWC_CLI_PLATFORM_H */
