/* The Uffd backend's handshake: the regions message in Firecracker's exact
 * form, and a real one over a Unix socket (the userfaultfd arrives as
 * SCM_RIGHTS and serves a page), when this host lets us use userfaultfd. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/err.h"
#include "vmm/uffd.h"

static void test_regions_json(void **state)
{
    (void)state;
    struct guest_mem gm = {0};
    assert_int_equal(gm_add_region(&gm, 0, 0xc0000000, (void *)0x7f0000000000), 0);
    assert_int_equal(gm_add_region(&gm, 0x100000000ull, 0x40000000, (void *)0x7f8000000000),
                     0);
    char *text;
    assert_int_equal(uffd_regions_json(&gm, 4096, &text), 0);
    /* Field names, order and values as Firecracker serialises them; the
     * second region's offset is where it starts in the memory file. */
    assert_string_equal(text,
                        "[{\"base_host_virt_addr\":139637976727552,\"size\":3221225472,"
                        "\"offset\":0,\"page_size\":4096,\"page_size_kib\":4096},"
                        "{\"base_host_virt_addr\":140187732541440,\"size\":1073741824,"
                        "\"offset\":3221225472,\"page_size\":4096,\"page_size_kib\":4096}]");
    free(text);
    assert_int_equal(uffd_regions_json(&gm, 2 << 20, &text), 0);
    assert_non_null(strstr(text, "\"page_size\":2097152,\"page_size_kib\":2097152"));
    free(text);
}

static void test_regions_json_ram_only(void **state)
{
    (void)state;
    struct guest_mem gm = {0};
    assert_int_equal(gm_add_region(&gm, 0, 0x1000000, (void *)0x10000000), 0);
    gm.nr_regions++; /* device memory after the RAM is not the handler's */
    gm.regions[1] = (struct gm_region){0x200000000ull, 0x200000, (void *)0x20000000, NULL};
    char *text;
    assert_int_equal(uffd_regions_json(&gm, 4096, &text), 0);
    struct json_object *list = json_tokener_parse(text);
    assert_non_null(list);
    assert_int_equal(json_object_array_length(list), 1);
    json_object_put(list);
    free(text);
}

static bool userfaultfd_usable(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC);
    if (fd < 0)
        fd = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
    if (fd >= 0)
        close(fd);
    return fd >= 0;
}

static int listen_at(const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(fd, 1), 0);
    return fd;
}

static int receive(int conn, char *text, size_t cap)
{
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {.iov_base = text, .iov_len = cap - 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof(control.buf)};
    ssize_t n = recvmsg(conn, &msg, 0);
    assert_true(n > 0);
    text[n] = '\0';
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    assert_non_null(c);
    assert_int_equal(c->cmsg_type, SCM_RIGHTS);
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(fd));
    return fd;
}

static void test_handshake(void **state)
{
    (void)state;
    if (!userfaultfd_usable()) {
        fprintf(stderr, "SKIPPED: test_handshake: this host refuses userfaultfd\n");
        skip();
    }
    char dir[] = "/tmp/ember-uffd-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/h.sock", dir);
    int listener = listen_at(path);
    const size_t size = 16 * 4096;
    uint8_t *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(ram != MAP_FAILED);
    struct guest_mem gm = {0};
    assert_int_equal(gm_add_region(&gm, 0, size, ram), 0);

    struct uffd_backend u;
    assert_int_equal(uffd_backend_start(&u, path, &gm, 4096), 0);
    int conn = accept(listener, NULL, NULL);
    char text[512], want[512];
    int uffd = receive(conn, text, sizeof(text));
    snprintf(want, sizeof(want), "[{\"base_host_virt_addr\":%llu,\"size\":65536,\"offset\":0,"
             "\"page_size\":4096,\"page_size_kib\":4096}]",
             (unsigned long long)(uintptr_t)ram);
    assert_string_equal(text, want);
    /* The descriptor is the registered userfaultfd: a page copied through
     * it appears in the guest memory. */
    static uint8_t page[4096];
    memset(page, 0x5a, sizeof(page));
    struct uffdio_copy copy = {.dst = (uintptr_t)ram + 3 * 4096, .src = (uintptr_t)page,
                               .len = 4096};
    assert_int_equal(ioctl(uffd, UFFDIO_COPY, &copy), 0);
    assert_int_equal(ram[3 * 4096 + 17], 0x5a);
    uffd_backend_stop(&u);
    uffd_backend_stop(&u); /* idempotent */
    close(uffd);
    close(conn);
    close(listener);
    munmap(ram, size);
    unlink(path);
    rmdir(dir);
}

static void test_no_handler(void **state)
{
    (void)state;
    if (!userfaultfd_usable())
        skip();
    const size_t size = 4 * 4096;
    uint8_t *ram = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    struct guest_mem gm = {0};
    assert_int_equal(gm_add_region(&gm, 0, size, ram), 0);
    struct uffd_backend u;
    assert_int_equal(uffd_backend_start(&u, "/nonexistent/h.sock", &gm, 4096), -ENOENT);
    assert_non_null(strstr(err_msg(), "cannot connect to the page-fault handler's socket "
                                      "/nonexistent/h.sock"));
    uffd_backend_stop(&u);
    munmap(ram, size);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_regions_json),
        cmocka_unit_test(test_regions_json_ram_only),
        cmocka_unit_test(test_handshake),
        cmocka_unit_test(test_no_handler),
    };
    return cmocka_run_group_tests_name("uffd", tests, NULL, NULL);
}
