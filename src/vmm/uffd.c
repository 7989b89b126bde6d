#include "vmm/uffd.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/evloop.h"
#include "util/log.h"
#include "util/rate_limiter.h"
#include "util/seccomp.h"
#include "util/thread.h"
#include "util/usock.h"
#include "util/util.h"
#include "vmm/console.h"
#include "vmm/exit_codes.h"

int uffd_regions_json(const struct guest_mem *mem, uint64_t page_size, char **out)
{
    struct json_object *list = json_object_new_array();
    if (!list)
        return err_set(-ENOMEM, "out of memory");
    uint64_t offset = 0;
    for (unsigned i = 0; i < mem->nr_ram; i++) {
        const struct gm_region *r = &mem->regions[i];
        struct json_object *o = json_object_new_object();
        if (!o || json_object_array_add(list, o)) {
            json_object_put(o);
            json_object_put(list);
            return err_set(-ENOMEM, "out of memory");
        }
        /* Firecracker's field order (serde keeps the struct's). */
        json_object_object_add(o, "base_host_virt_addr",
                               json_object_new_uint64((uintptr_t)r->hva));
        json_object_object_add(o, "size", json_object_new_uint64(r->size));
        json_object_object_add(o, "offset", json_object_new_uint64(offset));
        json_object_object_add(o, "page_size", json_object_new_uint64(page_size));
        json_object_object_add(o, "page_size_kib", json_object_new_uint64(page_size));
        offset += r->size;
    }
    *out = strdup(json_object_to_json_string_ext(list, JSON_C_TO_STRING_PLAIN));
    json_object_put(list);
    return *out ? 0 : err_set(-ENOMEM, "out of memory");
}

/* --- step 1: the userfaultfd ------------------------------------------------ */

/* The system call, or where it is kept from processes without
 * CAP_SYS_PTRACE (vm.unprivileged_userfaultfd = 0), /dev/userfaultfd. */
static int userfaultfd_open(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd >= 0)
        return fd;
    int first = errno;
    int dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (dev >= 0) {
        fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
        int e = errno;
        close(dev);
        if (fd >= 0)
            return fd;
        first = e;
    }
    return err_errno(-first, "uffd: cannot create a userfaultfd (the system call and "
                             "/dev/userfaultfd both refused)");
}

static int uffd_create_registered(struct uffd_backend *u, uint64_t page_size)
{
    int ret = userfaultfd_open();
    if (ret < 0)
        return ret;
    u->uffd = ret;
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
    if (ioctl(u->uffd, UFFDIO_API, &api) < 0)
        return err_errno(-errno, "uffd: UFFDIO_API with UFFD_FEATURE_EVENT_REMOVE");
    for (unsigned i = 0; i < u->mem->nr_ram; i++) {
        const struct gm_region *r = &u->mem->regions[i];
        struct uffdio_register reg = {
            .range = {.start = (uintptr_t)r->hva, .len = r->size},
            .mode = UFFDIO_REGISTER_MODE_MISSING,
        };
        if (ioctl(u->uffd, UFFDIO_REGISTER, &reg) < 0)
            return err_errno(-errno, "uffd: cannot register guest RAM region %u (%llu MiB, "
                             "%llu-byte pages)", i, (unsigned long long)(r->size >> 20),
                             (unsigned long long)page_size);
        if (!(reg.ioctls & (1ull << _UFFDIO_COPY)))
            return err_set(-EOPNOTSUPP, "uffd: the kernel offers no UFFDIO_COPY on guest "
                                        "RAM region %u", i);
    }
    return 0;
}

/* --- step 2: the handshake -------------------------------------------------- */

static int send_with_fd(int sock, const char *text, int fd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof(control));
    struct iovec iov = {.iov_base = (void *)text, .iov_len = strlen(text)};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    ssize_t n;
    do
        n = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return -errno;
    /* One message, as Firecracker sends it: a handler reads it with one
     * recvmsg, so a partial send is a failure, not something to finish. */
    return (size_t)n == iov.iov_len ? 0 : -EMSGSIZE;
}

/* Which process serves the pages: the pid the connection was made
 * with, watched through a pidfd. Unknown (another pid namespace, or a
 * kernel without pidfds) leaves the socket's hangup as the only sign. */
static void find_handler_process(struct uffd_backend *u)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(u->sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.pid <= 0)
        return;
    u->pid = cred.pid;
    u->pidfd = (int)syscall(SYS_pidfd_open, cred.pid, 0);
}

static int uffd_handshake(struct uffd_backend *u, uint64_t page_size)
{
    char *text;
    int ret = uffd_regions_json(u->mem, page_size, &text);
    if (ret)
        return ret;
    ret = usock_connect(u->path);
    if (ret < 0) {
        free(text);
        return err_errno(ret, "uffd: cannot connect to the page-fault handler's socket %s",
                         u->path);
    }
    u->sock = ret;
    find_handler_process(u);
    ret = send_with_fd(u->sock, text, u->uffd);
    free(text);
    if (ret)
        return err_errno(ret, "uffd: cannot send the memory regions to the page-fault "
                              "handler at %s", u->path);
    log_info("uffd: guest memory handed to the page-fault handler at %s (pid %d)", u->path,
             (int)u->pid);
    return 0;
}

/* --- the watcher ------------------------------------------------------------ */

static void __attribute__((noreturn)) handler_failed(const struct uffd_backend *u,
                                                     const char *why)
{
    log_error("uffd: the page-fault handler at %s (pid %d) %s; guest memory it has not "
              "served can never be filled: ember stops, and the VM with it", u->path,
              (int)u->pid, why);
    console_restore_terminal();
    fflush(NULL);
    _exit(EMBER_EXIT_VMM_ERROR);
}

/* Pages of guest RAM present now: the handler's progress. */
static uint64_t resident_pages(const struct guest_mem *mem)
{
    enum { CHUNK = 16384 };
    unsigned char vec[CHUNK];
    uint64_t n = 0;
    for (unsigned i = 0; i < mem->nr_ram; i++) {
        const struct gm_region *r = &mem->regions[i];
        for (uint64_t off = 0; off < r->size; off += (uint64_t)CHUNK * GM_PAGE_SIZE) {
            uint64_t len = MIN((uint64_t)CHUNK * GM_PAGE_SIZE, r->size - off);
            if (mincore(r->hva + off, len, vec) < 0)
                continue;
            for (uint64_t p = 0; p < len / GM_PAGE_SIZE; p++)
                n += vec[p] & 1;
        }
    }
    return n;
}

/* Faults waiting for a page: the kernel's count of them, read by the
 * handler or not ("total:" in the userfaultfd's fdinfo), else at least
 * the unread ones. */
static bool faults_waiting(const struct uffd_backend *u)
{
    char text[256];
    ssize_t n = u->fdinfo_fd >= 0 && lseek(u->fdinfo_fd, 0, SEEK_SET) == 0
                    ? read(u->fdinfo_fd, text, sizeof(text) - 1) : -1;
    const char *total = NULL;
    if (n > 0) {
        text[n] = '\0';
        total = strstr(text, "total:");
    }
    if (total)
        return strtoul(total + strlen("total:"), NULL, 10) > 0;
    struct pollfd p = {.fd = u->uffd, .events = POLLIN};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

/* Anything the handler writes is read and dropped: Firecracker's
 * protocol has no messages from the handler. false once it hung up. */
static bool drain_socket(struct uffd_backend *u, bool *warned)
{
    char junk[512];
    ssize_t n = read(u->sock, junk, sizeof(junk));
    if (n > 0 && !*warned) {
        log_warn("uffd: the page-fault handler wrote on its socket; the protocol has no "
                 "messages from the handler: ignored");
        *warned = true;
    }
    return n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR));
}

/* The handler is gone once its connection closed and its process exited
 * (or, a pid ember cannot see, once the connection closed): either alone
 * is not enough, since a handler may close the socket and serve on, and
 * the process that listened may hand the connection to another. */
struct handler_signs {
    bool sock_open, process_alive, warned;
};

static void check_liveness(struct uffd_backend *u, struct handler_signs *h,
                           const struct pollfd *pid, const struct pollfd *sock)
{
    if (pid->revents)
        h->process_alive = false;
    if (sock->revents && !drain_socket(u, &h->warned))
        h->sock_open = false;
    if (!h->sock_open && !h->process_alive)
        handler_failed(u, u->pidfd >= 0 ? "exited" : "closed its socket (its process is "
                                                     "unknown to ember)");
    if (pid->revents && h->sock_open)
        log_info("uffd: the page-fault handler's process (pid %d) exited; its socket is "
                 "still open, so another process serves it", (int)u->pid);
    if (sock->revents && !h->sock_open)
        log_info("uffd: the page-fault handler closed its socket; its process (pid %d) "
                 "still runs", (int)u->pid);
}

static void *watch_handler(void *arg)
{
    struct uffd_backend *u = arg;
    seccomp_enter_or_exit(SECCOMP_UFFD);
    struct handler_signs h = {.sock_open = true, .process_alive = u->pidfd >= 0};
    uint64_t last_resident = 0, last_progress = rate_limiter_now_ns();
    for (;;) {
        struct pollfd fds[3] = {{.fd = u->quit_fd, .events = POLLIN},
                                {.fd = h.process_alive ? u->pidfd : -1, .events = POLLIN},
                                {.fd = h.sock_open ? u->sock : -1,
                                 .events = POLLIN | POLLRDHUP}};
        int n = poll(fds, 3, 1000);
        if (n < 0 && errno != EINTR)
            handler_failed(u, "could not be watched (poll failed)");
        if (fds[0].revents)
            return NULL;
        check_liveness(u, &h, &fds[1], &fds[2]);
        /* A stall: faults waiting, and no page arriving. */
        bool waiting = faults_waiting(u);
        uint64_t resident = waiting ? resident_pages(u->mem) : 0;
        if (!waiting || resident != last_resident) {
            last_resident = resident;
            last_progress = rate_limiter_now_ns();
        } else if (rate_limiter_now_ns() - last_progress >= UFFD_STALL_SECONDS * 1000000000ull) {
            char why[96];
            snprintf(why, sizeof(why), "has left page faults waiting, serving no page, "
                     "for %d s", UFFD_STALL_SECONDS);
            handler_failed(u, why);
        }
    }
}

/* --- life cycle ------------------------------------------------------------- */

void uffd_backend_init(struct uffd_backend *u)
{
    memset(u, 0, sizeof(*u));
    u->uffd = u->sock = u->pidfd = u->quit_fd = u->fdinfo_fd = -1;
}

int uffd_backend_start(struct uffd_backend *u, const char *socket_path,
                       const struct guest_mem *mem, uint64_t page_size)
{
    uffd_backend_init(u);
    u->mem = mem;
    if (strlen(socket_path) >= sizeof(u->path))
        return err_set(-ENAMETOOLONG, "uffd: socket path %s is too long", socket_path);
    strcpy(u->path, socket_path);
    int ret = uffd_create_registered(u, page_size);
    if (!ret)
        ret = uffd_handshake(u, page_size);
    if (!ret) { /* opened here: the watcher may not open files */
        char fdinfo[64];
        snprintf(fdinfo, sizeof(fdinfo), "/proc/self/fdinfo/%d", u->uffd);
        u->fdinfo_fd = open(fdinfo, O_RDONLY | O_CLOEXEC);
    }
    if (!ret && (u->quit_fd = eventfd_create()) < 0)
        ret = u->quit_fd;
    if (!ret && (ret = -thread_create(&u->watcher, watch_handler, u)))
        err_errno(ret, "uffd: cannot start the handler's watcher");
    u->watching = !ret;
    return ret;
}

void uffd_backend_stop(struct uffd_backend *u)
{
    if (u->watching) {
        eventfd_signal(u->quit_fd);
        pthread_join(u->watcher, NULL);
        u->watching = false;
    }
    int *fds[] = {&u->uffd, &u->sock, &u->pidfd, &u->quit_fd, &u->fdinfo_fd};
    for (size_t i = 0; i < ARRAY_SIZE(fds); i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}
