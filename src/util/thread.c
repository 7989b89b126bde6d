#include "thread.h"

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
    return e;
}
