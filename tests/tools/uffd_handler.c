/* uffd_handler: an example page-fault handler for ember's (and Firecracker's)
 * Uffd snapshot-memory backend, serving guest pages from a snapshot's memory
 * file. It is the reference for writing one, and ember's tests use it.
 *
 *   uffd_handler SOCKET MEMFILE [--exit-after PAGES] [--garbage] [--close-socket]
 *                [--page-size BYTES]
 *
 * It listens on the Unix stream socket SOCKET. Each VMM that connects (one
 * per restored VM: clones share one handler) sends one message: a JSON array
 * of its guest RAM regions, {"base_host_virt_addr", "size", "offset",
 * "page_size", ...}, with its userfaultfd as SCM_RIGHTS ancillary data. The
 * region at base_host_virt_addr holds the file's bytes [offset, offset+size).
 * From then on the handler reads uffd_msg events from that descriptor:
 *   - UFFD_EVENT_PAGEFAULT: copy the page_size page around the address from
 *     the file (UFFDIO_COPY, which also wakes the faulting thread);
 *   - UFFD_EVENT_REMOVE (the balloon gave the range back): unregister the
 *     range, so the kernel fills later faults there with zeroes.
 * A VMM that ends closes the connection: the handler forgets that VM.
 *
 * It prints "uffd_handler: vm N: P pages in the first second" one second
 * after each handshake, and when the VM goes the pages it served and the
 * 4 KiB pages removed (by the balloon). Test-only hostility:
 * --exit-after PAGES exits (status 3) once it served that many pages in all;
 * --garbage writes bytes on each connection; --close-socket closes each
 * connection after the handshake and serves on (Firecracker allows it);
 * --page-size serves pages of another size than the VMM said (a wrong one
 * makes every copy fail). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_VMS 16
#define MAX_REGIONS 8

struct region {
    uint64_t base, size, offset;
};

struct vm {
    int uffd, conn;
    struct region regions[MAX_REGIONS];
    unsigned nr_regions;
    uint64_t page_size;
    uint64_t served, served_first_second, removed;
    double start;
    bool reported;
    unsigned id;
};

static const uint8_t *memfile;
static uint64_t memfile_size;
static long exit_after = -1, page_size_override;
static bool garbage, close_socket;
static uint64_t served_total;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int listen_on(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(addr.sun_path)) {
        fprintf(stderr, "uffd_handler: socket path too long\n");
        return -1;
    }
    strcpy(addr.sun_path, path);
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(fd, 8) < 0) {
        perror("uffd_handler: listen");
        return -1;
    }
    return fd;
}

/* The VMM's one message: the regions and, as SCM_RIGHTS, the userfaultfd. */
static int receive_handshake(int conn, char *text, size_t cap, int *uffd)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = text, .iov_len = cap - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    ssize_t n = recvmsg(conn, &msg, MSG_CMSG_CLOEXEC);
    if (n <= 0)
        return -1;
    text[n] = '\0';
    *uffd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
            memcpy(uffd, CMSG_DATA(c), sizeof(int));
    return *uffd >= 0 ? 0 : -1;
}

static bool get_u64(struct json_object *o, const char *key, uint64_t *out)
{
    struct json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
        return false;
    *out = json_object_get_uint64(v);
    return true;
}

static int parse_regions(const char *text, struct vm *vm)
{
    struct json_object *list = json_tokener_parse(text);
    int ret = -1;
    if (!list || !json_object_is_type(list, json_type_array))
        goto out;
    size_t n = json_object_array_length(list);
    if (n == 0 || n > MAX_REGIONS)
        goto out;
    for (size_t i = 0; i < n; i++) {
        struct json_object *o = json_object_array_get_idx(list, i);
        struct region *r = &vm->regions[i];
        if (!get_u64(o, "base_host_virt_addr", &r->base) || !get_u64(o, "size", &r->size) ||
            !get_u64(o, "offset", &r->offset) || !get_u64(o, "page_size", &vm->page_size))
            goto out;
        if (r->offset > memfile_size || r->size > memfile_size - r->offset)
            goto out; /* the file is too short for this region */
        uint64_t page = vm->page_size;
        if (page < 4096 || (page & (page - 1)) || ((r->base | r->size | r->offset) & (page - 1)))
            goto out; /* not whole pages of a size the kernel knows */
    }
    vm->nr_regions = (unsigned)n;
    ret = 0;
out:
    json_object_put(list);
    return ret;
}

/* false: try again later (EAGAIN: the VMM's mappings are changing, as
 * while a UFFD_EVENT_REMOVE waits to be read). */
static bool serve_fault(struct vm *vm, uint64_t addr)
{
    uint64_t page = page_size_override ? (uint64_t)page_size_override : vm->page_size;
    uint64_t start = addr & ~(page - 1);
    for (unsigned i = 0; i < vm->nr_regions; i++) {
        const struct region *r = &vm->regions[i];
        if (start < r->base || start - r->base >= r->size)
            continue;
        struct uffdio_copy copy = {.dst = start,
                                   .src = (uintptr_t)(memfile + r->offset + (start - r->base)),
                                   .len = page};
        if (ioctl(vm->uffd, UFFDIO_COPY, &copy) < 0 && errno != EEXIST) {
            if (errno == EAGAIN)
                return false;
            fprintf(stderr, "uffd_handler: vm %u: UFFDIO_COPY %#llx+%llu: %s\n", vm->id,
                    (unsigned long long)start, (unsigned long long)page, strerror(errno));
            return true;
        }
        vm->served++;
        if (now() - vm->start < 1.0)
            vm->served_first_second++;
        if (exit_after >= 0 && (long)++served_total >= exit_after) {
            fprintf(stderr, "uffd_handler: exiting after %ld pages, as told\n", exit_after);
            exit(3);
        }
        return true;
    }
    fprintf(stderr, "uffd_handler: vm %u: fault at %#llx outside its regions\n", vm->id,
            (unsigned long long)addr);
    return true;
}

static void forget_range(struct vm *vm, uint64_t start, uint64_t end)
{
    struct uffdio_range range = {.start = start, .len = end - start};
    vm->removed += (end - start) / 4096;
    if (ioctl(vm->uffd, UFFDIO_UNREGISTER, &range) < 0)
        fprintf(stderr, "uffd_handler: vm %u: UFFDIO_UNREGISTER: %s\n", vm->id,
                strerror(errno));
}

/* Every event waiting on the VM's userfaultfd; false once the VMM is gone.
 * A fault whose copy must wait is kept and tried again once every event
 * has been read: the faulting thread sleeps until its page comes, and the
 * kernel will not say again that it waits. */
static bool handle_events(struct vm *vm)
{
    uint64_t deferred[256];
    unsigned nr_deferred = 0;
    for (;;) {
        struct uffd_msg msg;
        ssize_t n = read(vm->uffd, &msg, sizeof(msg));
        if (n == sizeof(msg)) {
            uint64_t addr = msg.arg.pagefault.address;
            if (msg.event == UFFD_EVENT_PAGEFAULT && !serve_fault(vm, addr)) {
                if (nr_deferred < sizeof(deferred) / sizeof(deferred[0]))
                    deferred[nr_deferred++] = addr;
                else
                    fprintf(stderr, "uffd_handler: vm %u: too many faults to retry\n", vm->id);
            } else if (msg.event == UFFD_EVENT_REMOVE) {
                forget_range(vm, msg.arg.remove.start, msg.arg.remove.end);
            }
            continue;
        }
        if (n >= 0 || errno != EAGAIN)
            return false;
        unsigned left = 0;
        for (unsigned i = 0; i < nr_deferred; i++)
            if (!serve_fault(vm, deferred[i]))
                deferred[left++] = deferred[i];
        nr_deferred = left;
        if (!nr_deferred)
            return true;
        usleep(100); /* the event that holds the copies back is on its way */
    }
}

static void report(struct vm *vm)
{
    if (!vm->reported && now() - vm->start >= 1.0) {
        printf("uffd_handler: vm %u: %llu pages in the first second\n", vm->id,
               (unsigned long long)vm->served_first_second);
        fflush(stdout);
        vm->reported = true;
    }
}

static bool accept_vm(int listener, struct vm *vm, unsigned id)
{
    char text[4096];
    memset(vm, 0, sizeof(*vm));
    vm->id = id;
    vm->conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (vm->conn < 0)
        return false;
    if (receive_handshake(vm->conn, text, sizeof(text), &vm->uffd) < 0 ||
        parse_regions(text, vm) < 0) {
        fprintf(stderr, "uffd_handler: a bad handshake: '%.200s'\n", text);
        if (vm->uffd >= 0)
            close(vm->uffd);
        close(vm->conn);
        return false;
    }
    fcntl(vm->uffd, F_SETFL, O_NONBLOCK);
    vm->start = now();
    printf("uffd_handler: vm %u: %u regions, %llu-byte pages: %s\n", id, vm->nr_regions,
           (unsigned long long)vm->page_size, text);
    fflush(stdout);
    if (garbage && write(vm->conn, "\x01garbage\xff{[", 11) < 0)
        perror("uffd_handler: garbage");
    if (close_socket) { /* serves on through the userfaultfd alone */
        close(vm->conn);
        vm->conn = -1;
    }
    return true;
}

static int parse_args(int argc, char **argv)
{
    if (argc < 3)
        return -1;
    for (int i = 3; i < argc; i++) {
        if (!strcmp(argv[i], "--garbage"))
            garbage = true;
        else if (!strcmp(argv[i], "--close-socket"))
            close_socket = true;
        else if (!strcmp(argv[i], "--exit-after") && i + 1 < argc)
            exit_after = atol(argv[++i]);
        else if (!strcmp(argv[i], "--page-size") && i + 1 < argc)
            page_size_override = atol(argv[++i]);
        else
            return -1;
    }
    return 0;
}

static int map_memfile(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
        perror("uffd_handler: memory file");
        return -1;
    }
    memfile_size = (uint64_t)st.st_size;
    memfile = mmap(NULL, memfile_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    return memfile == MAP_FAILED ? -1 : 0;
}

int main(int argc, char **argv)
{
    if (parse_args(argc, argv) < 0) {
        fprintf(stderr, "usage: uffd_handler SOCKET MEMFILE [--exit-after PAGES] [--garbage] "
                        "[--close-socket] [--page-size BYTES]\n");
        return 2;
    }
    int listener = map_memfile(argv[2]) < 0 ? -1 : listen_on(argv[1]);
    if (listener < 0)
        return 1;
    struct vm vms[MAX_VMS];
    unsigned nr = 0, next_id = 1;
    for (;;) {
        /* Each VM: its userfaultfd, and its connection, which the VMM
         * closes when it ends (a userfaultfd alone never says so). */
        struct pollfd fds[2 * MAX_VMS + 1] = {{.fd = nr < MAX_VMS ? listener : -1,
                                               .events = POLLIN}};
        for (unsigned i = 0; i < nr; i++) {
            fds[2 * i + 1] = (struct pollfd){.fd = vms[i].uffd, .events = POLLIN};
            fds[2 * i + 2] = (struct pollfd){.fd = vms[i].conn, .events = POLLRDHUP};
        }
        if (poll(fds, 2 * nr + 1, 100) < 0 && errno != EINTR)
            return 1;
        for (unsigned i = nr; i-- > 0;) {
            report(&vms[i]);
            bool alive = !fds[2 * i + 2].revents;
            if (fds[2 * i + 1].revents && !handle_events(&vms[i]))
                alive = false;
            if (alive)
                continue;
            printf("uffd_handler: vm %u: gone after %llu pages; %llu pages removed\n",
                   vms[i].id, (unsigned long long)vms[i].served,
                   (unsigned long long)vms[i].removed);
            fflush(stdout);
            close(vms[i].uffd);
            if (vms[i].conn >= 0)
                close(vms[i].conn);
            vms[i] = vms[--nr];
        }
        if (fds[0].revents && accept_vm(listener, &vms[nr], next_id))
            nr++, next_id++;
    }
}
