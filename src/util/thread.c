#include "thread.h"

#include <sys/mman.h>

/* The flag keeps the stack's mapping from merging with a neighbour that
 * could hold a huge page, and from khugepaged's collapsing. Best effort:
 * a host without THP refuses the advice, and the thread runs the same. */
static void keep_stack_out_of_huge_pages(pthread_t thread)
{
    pthread_attr_t attr;
    if (pthread_getattr_np(thread, &attr))
        return;
    void *addr;
    size_t size;
    if (!pthread_attr_getstack(&attr, &addr, &size))
        (void)madvise(addr, size, MADV_NOHUGEPAGE);
    pthread_attr_destroy(&attr);
}

int thread_create(pthread_t *thread, void *(*fn)(void *), void *arg)
{
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e)
        return e;
    e = pthread_attr_setstacksize(&attr, THREAD_STACK_SIZE);
    if (!e)
        e = pthread_create(thread, &attr, fn, arg);
    pthread_attr_destroy(&attr);
    if (!e)
        keep_stack_out_of_huge_pages(*thread);
    return e;
}
