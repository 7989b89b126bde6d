#include "timeline.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <time.h>

#include "log.h"

#define TIMELINE_MAX 24

struct timeline_entry {
    const char *step;
    uint64_t ns;
};

/* Marks come from the main thread and the report from a vCPU's, which may
 * overlap: the lock keeps each entry whole when it is read. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct timeline_entry entries[TIMELINE_MAX];
static unsigned nr_entries;
static bool reported;
static uint64_t cpu_before_start_ns;

static uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mark_locked(const char *step)
{
    uint64_t now = clock_ns(CLOCK_MONOTONIC);
    if (nr_entries >= TIMELINE_MAX)
        return;
    if (nr_entries == 0) /* exec, the loader and libc's start-up: this process's CPU so far */
        cpu_before_start_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
    entries[nr_entries++] = (struct timeline_entry){.step = step, .ns = now};
}

void timeline_mark(const char *step)
{
    pthread_mutex_lock(&lock);
    mark_locked(step);
    pthread_mutex_unlock(&lock);
}

static double ms(uint64_t ns)
{
    return (double)ns / 1e6;
}

void timeline_report(const char *step)
{
    pthread_mutex_lock(&lock);
    bool first = !reported;
    reported = true;
    if (first)
        mark_locked(step);
    unsigned n = nr_entries;
    pthread_mutex_unlock(&lock);
    /* Entries [0, n) are complete and never written again. */
    if (!first || n < 2 || log_get_level() < LOG_INFO)
        return;
    char line[1024];
    int len = snprintf(line, sizeof(line), "%s at monotonic %.3f ms, %.2f ms of CPU before it;",
                       entries[0].step, ms(entries[0].ns), ms(cpu_before_start_ns));
    for (unsigned i = 1; i < n && len > 0 && (size_t)len < sizeof(line); i++)
        len += snprintf(line + len, sizeof(line) - (size_t)len, "%s %s +%.2f", i > 1 ? "," : "",
                        entries[i].step, ms(entries[i].ns - entries[i - 1].ns));
    log_info("start-up: %s = %.2f ms after %s", line, ms(entries[n - 1].ns - entries[0].ns),
             entries[0].step);
}
