/* What several CPUs must get right together, checked in the guest (a static
 * program for the default guest's initramfs):
 *   atomics   threads on every CPU add to one counter with LOCK XADD and
 *             under a mutex; the totals must be exact;
 *   xmodify   cross-modifying code: a thread on one CPU rewrites a function
 *             in an executable page while a thread on another CPU calls it;
 *             after each handshake the caller must see the new code;
 *   shootdown one thread maps, writes and unmaps pages in a loop while the
 *             others fault pages of their own in: the kernel's TLB-flush IPIs
 *             must keep every CPU's view right (each page reads back what was
 *             written).
 * Prints "smpstress: NAME ok ..." per check or "smpstress: NAME FAILED ...",
 * and exits 1 if any failed. Usage: smpstress [ROUNDS] */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static int ncpu;
static long rounds = 200000;
static int failures;

static void pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu % ncpu, &set);
    sched_setaffinity(0, sizeof(set), &set);
}

/* --- atomics --------------------------------------------------------------------- */
static _Atomic long counter;
static long locked_counter;
static pthread_mutex_t mutex = PTHREAD_MUTEX_INITIALIZER;

static void *add_loop(void *arg)
{
    pin((int)(intptr_t)arg);
    for (long i = 0; i < rounds; i++) {
        atomic_fetch_add_explicit(&counter, 1, memory_order_relaxed);
        if ((i & 15) == 0) {
            pthread_mutex_lock(&mutex);
            locked_counter++;
            pthread_mutex_unlock(&mutex);
        }
    }
    return NULL;
}

static void check_atomics(void)
{
    int n = ncpu * 2;
    pthread_t t[64];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, add_loop, (void *)(intptr_t)i);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    long want = rounds * n, want_locked = ((rounds + 15) / 16) * n;
    long got = atomic_load(&counter);
    int ok = got == want && locked_counter == want_locked;
    failures += !ok;
    printf("smpstress: atomics %s: %d threads, %ld/%ld xadd, %ld/%ld under a mutex\n",
           ok ? "ok" : "FAILED", n, got, want, locked_counter, want_locked);
}

/* --- cross-modifying code --------------------------------------------------------- */
static uint8_t *code;
static _Atomic int turn; /* odd: the caller's, even: the writer's */
static _Atomic int xmod_bad;
static const int xmod_rounds = 3000;

static void write_function(int value)
{
    /* mov eax, imm32; ret */
    code[0] = 0xb8;
    memcpy(code + 1, &value, 4);
    code[5] = 0xc3;
}

static void *xmod_writer(void *arg)
{
    (void)arg;
    pin(0);
    for (int k = 1; k <= xmod_rounds; k++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * k - 2)
            ;
        write_function(k * 7919);
        atomic_store_explicit(&turn, 2 * k - 1, memory_order_release);
    }
    return NULL;
}

static void *xmod_caller(void *arg)
{
    (void)arg;
    pin(1);
    int (*fn)(void) = (int (*)(void))(void *)code;
    for (int k = 1; k <= xmod_rounds; k++) {
        while (atomic_load_explicit(&turn, memory_order_acquire) != 2 * k - 1)
            ;
        int got = fn(); /* a serializing fence is not needed on x86 after the flag */
        if (got != k * 7919 && atomic_fetch_add(&xmod_bad, 1) < 3)
            printf("smpstress: xmodify round %d: the function returned %d, not %d\n", k, got,
                   k * 7919);
        atomic_store_explicit(&turn, 2 * k, memory_order_release);
    }
    return NULL;
}

static void check_xmodify(void)
{
    code = mmap(NULL, 4096, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
                -1, 0);
    if (code == MAP_FAILED) {
        failures++;
        printf("smpstress: xmodify FAILED: no executable page\n");
        return;
    }
    write_function(0);
    ((int (*)(void))(void *)code)(); /* decoded once before the rounds */
    pthread_t w, c;
    pthread_create(&w, NULL, xmod_writer, NULL);
    pthread_create(&c, NULL, xmod_caller, NULL);
    pthread_join(w, NULL);
    pthread_join(c, NULL);
    int bad = atomic_load(&xmod_bad);
    failures += bad != 0;
    printf("smpstress: xmodify %s: %d rounds on CPUs 0 and %d, %d stale\n", bad ? "FAILED" : "ok",
           xmod_rounds, 1 % ncpu, bad);
}

/* --- TLB shootdowns --------------------------------------------------------------- */
static _Atomic int shoot_stop;
static _Atomic long shoot_bad;

static void *mapper(void *arg)
{
    pin((int)(intptr_t)arg);
    long n = 0;
    while (!atomic_load(&shoot_stop)) {
        long *p = mmap(NULL, 8 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (p == MAP_FAILED)
            continue;
        for (int i = 0; i < 8; i++)
            p[i * 512] = n * 8 + i;
        for (int i = 0; i < 8; i++)
            if (p[i * 512] != n * 8 + i)
                atomic_fetch_add(&shoot_bad, 1);
        munmap(p, 8 * 4096);
        n++;
    }
    return (void *)n;
}

static void check_shootdown(void)
{
    int n = ncpu * 2;
    pthread_t t[64];
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, mapper, (void *)(intptr_t)i);
    sleep(2);
    atomic_store(&shoot_stop, 1);
    long total = 0;
    for (int i = 0; i < n; i++) {
        void *r;
        pthread_join(t[i], &r);
        total += (long)r;
    }
    long bad = atomic_load(&shoot_bad);
    failures += bad != 0 || total == 0;
    printf("smpstress: shootdown %s: %d threads, %ld map/write/unmap rounds, %ld wrong reads\n",
           bad || !total ? "FAILED" : "ok", n, total, bad);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        rounds = atol(argv[1]);
    ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (ncpu < 1)
        ncpu = 1;
    setvbuf(stdout, NULL, _IOLBF, 0);
    printf("smpstress: %d CPUs\n", ncpu);
    check_atomics();
    check_xmodify();
    check_shootdown();
    return failures ? 1 : 0;
}
