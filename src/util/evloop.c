#include "util/evloop.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

int evloop_init(struct evloop *loop)
{
    memset(loop, 0, sizeof(*loop));
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return err_errno(-errno, "epoll_create1 failed");
    return 0;
}

void evloop_destroy(struct evloop *loop)
{
    if (loop->epfd >= 0)
        close(loop->epfd);
    loop->epfd = -1;
}

int evloop_add(struct evloop *loop, int fd, uint32_t events, evloop_fn fn, void *ctx)
{
    struct evloop_handler *slot = NULL;
    for (unsigned i = 0; i < EVLOOP_MAX_HANDLERS && !slot; i++)
        if (!loop->handlers[i].in_use)
            slot = &loop->handlers[i];
    if (!slot)
        return err_set(-ENOSPC, "event loop is full");
    struct epoll_event ev = {.events = events, .data.ptr = slot};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return err_errno(-errno, "cannot watch file descriptor %d", fd);
    *slot = (struct evloop_handler){fd, fn, ctx, true};
    return 0;
}

static struct evloop_handler *evloop_find(struct evloop *loop, int fd)
{
    for (unsigned i = 0; i < EVLOOP_MAX_HANDLERS; i++)
        if (loop->handlers[i].in_use && loop->handlers[i].fd == fd)
            return &loop->handlers[i];
    return NULL;
}

int evloop_modify(struct evloop *loop, int fd, uint32_t events)
{
    struct evloop_handler *h = evloop_find(loop, fd);
    if (!h)
        return -ENOENT;
    struct epoll_event ev = {.events = events, .data.ptr = h};
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

void evloop_remove(struct evloop *loop, int fd)
{
    struct evloop_handler *h = evloop_find(loop, fd);
    if (!h)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    h->in_use = false;
}

int evloop_run_once(struct evloop *loop, int timeout_ms)
{
    struct epoll_event events[16];
    int n = epoll_wait(loop->epfd, events, 16, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : err_errno(-errno, "epoll_wait failed");
    int ran = 0;
    for (int i = 0; i < n && !loop->stop; i++) {
        struct evloop_handler *h = events[i].data.ptr;
        /* A handler earlier in this batch may have removed this one. */
        if (h->in_use) {
            h->fn(h->ctx, events[i].events);
            ran++;
        }
    }
    return ran;
}

int evloop_run(struct evloop *loop)
{
    loop->stop = false;
    while (!loop->stop) {
        int ret = evloop_run_once(loop, -1);
        if (ret < 0)
            return ret;
    }
    return 0;
}

void evloop_stop(struct evloop *loop)
{
    loop->stop = true;
}

int eventfd_create(void)
{
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fd < 0 ? err_errno(-errno, "eventfd failed") : fd;
}

void eventfd_signal(int fd)
{
    uint64_t one = 1;
    ssize_t ret = write(fd, &one, sizeof(one));
    (void)ret; /* EAGAIN: the counter is already non-zero, which suffices */
}

void eventfd_drain(int fd)
{
    uint64_t value;
    ssize_t ret = read(fd, &value, sizeof(value));
    (void)ret;
}
