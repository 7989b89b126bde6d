/* The virtio-fs device's reader: a large READ copied by two workers, half
 * each, gives what one preadv gives, short reads and errors included; a
 * small one, or one with no idle worker, is a plain preadv. */
#include "unit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fakes.h"
#include "virtio/fs.h"

#define PAGE 4096u
#define MAX_PAGES 256u

struct fixture {
    char dir[64];
    struct guest_mem gm;
    struct virtio_fs fs;
    int fd;
    uint8_t *buf;
    struct iovec iov[MAX_PAGES];
};

static uint8_t pattern(size_t at)
{
    return (uint8_t)(at * 131 + (at >> 12) * 7 + 1);
}

/* A share with one file of 'size' bytes, the device's workers started or
 * not. On the heap: a failed check leaves the test with the workers still
 * waiting on it (cmocka goes on with the next test). */
static struct fixture *up(size_t size, bool workers)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    snprintf(f->dir, sizeof(f->dir), "/tmp/ember-fsdev-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/data", f->dir);
    f->fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(f->fd >= 0);
    uint8_t *content = malloc(size ? size : 1);
    for (size_t i = 0; i < size; i++)
        content[i] = pattern(i);
    assert_int_equal(pwrite(f->fd, content, size, 0), (ssize_t)size);
    free(content);
    fake_mem_init(&f->gm, 0, 1u << 20);
    struct fs_config c = {.path = f->dir, .tag = "t", .cache = FS_CACHE_MODE_AUTO};
    struct fsrv_limits lim = {.max_nodes = 16, .max_handles = 16};
    assert_int_equal(virtio_fs_init(&f->fs, &f->gm, &c, &lim), 0);
    if (workers) {
        assert_int_equal(virtio_fs_start(&f->fs), 0);
        /* until both wait for work, so one is idle to help */
        for (int tries = 0;; tries++) {
            pthread_mutex_lock(&f->fs.vdev.lock);
            unsigned idle = f->fs.idle_workers;
            pthread_mutex_unlock(&f->fs.vdev.lock);
            if (idle == VIRTIO_FS_WORKERS)
                break;
            assert_true(tries < 5000);
            usleep(1000);
        }
    }
    f->buf = calloc(MAX_PAGES, PAGE);
    assert_non_null(f->buf);
    return f;
}

static void down(struct fixture *f)
{
    virtio_fs_destroy(&f->fs);
    fake_mem_free(&f->gm);
    close(f->fd);
    free(f->buf);
    char path[128];
    snprintf(path, sizeof(path), "%s/data", f->dir);
    unlink(path);
    rmdir(f->dir);
    free(f);
}

/* 'pages' page-sized buffers, in reverse order (the guest's pages are
 * scattered): half boundaries must follow the iovecs, not the buffer. */
static int lay(struct fixture *f, unsigned pages)
{
    memset(f->buf, 0xee, (size_t)MAX_PAGES * PAGE);
    for (unsigned i = 0; i < pages; i++)
        f->iov[i] = (struct iovec){f->buf + (size_t)(pages - 1 - i) * PAGE, PAGE};
    return (int)pages;
}

/* The first 'n' bytes read from file offset 'off' are the file's, the
 * rest of the buffers untouched past the end of the file. */
static void check(struct fixture *f, unsigned pages, off_t off, size_t n)
{
    for (unsigned i = 0; i < pages; i++) {
        const uint8_t *p = f->iov[i].iov_base;
        for (unsigned b = 0; b < PAGE; b++) {
            size_t at = (size_t)i * PAGE + b;
            if (at < n)
                assert_int_equal(p[b], pattern((size_t)off + at));
        }
    }
}

static void test_large_read_split_in_two(void **state)
{
    (void)state;
    struct fixture *f = up((size_t)MAX_PAGES * PAGE + 8192, true);
    /* Whether the idle worker wakes before the caller is done with its own
     * half is up to the scheduler (the caller then reads both): the result
     * must be the same either way, and within some tries one is split (on
     * a loaded host the worker's wake-up can lose the race hundreds of
     * times in a row: 200 tries failed about one run in forty). */
    for (unsigned tries = 0; tries < 5000 && f->fs.reads_split < 2; tries++) {
        int n = lay(f, MAX_PAGES);
        assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, 4096), (ssize_t)MAX_PAGES * PAGE);
        check(f, MAX_PAGES, 4096, (size_t)MAX_PAGES * PAGE);
        /* an odd count of buffers: the halves differ by one */
        n = lay(f, 129);
        assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, 0), 129 * (ssize_t)PAGE);
        check(f, 129, 0, 129 * (size_t)PAGE);
    }
    assert_true(f->fs.reads_split >= 2);
    down(f);
}

static void test_short_reads_and_errors(void **state)
{
    (void)state;
    const size_t size = 600 * 1024 + 100;
    struct fixture *f = up(size, true);
    /* the end of the file in the second half */
    int n = lay(f, MAX_PAGES);
    assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, 0), (ssize_t)size);
    check(f, MAX_PAGES, 0, size);
    /* ... in the first half: the second half reads nothing */
    assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, 100 * 1024),
                     (ssize_t)(size - 100 * 1024));
    check(f, MAX_PAGES, 100 * 1024, size - 100 * 1024);
    /* ... exactly where the second half starts */
    n = lay(f, MAX_PAGES);
    assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, (off_t)size - 128 * PAGE),
                     128 * (ssize_t)PAGE);
    /* past the end */
    assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, (off_t)size + PAGE), 0);
    /* a bad descriptor: -1 and preadv's errno, for both halves */
    errno = 0;
    assert_int_equal(virtio_fs_read(&f->fs, -1, f->iov, n, 0), -1);
    assert_int_equal(errno, EBADF);
    down(f);
}

static void test_small_or_alone_not_split(void **state)
{
    (void)state;
    struct fixture *f = up((size_t)MAX_PAGES * PAGE, true);
    int n = lay(f, FS_SPLIT_MIN / PAGE - 1);
    assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, 0), n * (ssize_t)PAGE);
    check(f, (unsigned)n, 0, (size_t)n * PAGE);
    /* one buffer of any size has no halves */
    f->iov[0] = (struct iovec){f->buf, (size_t)MAX_PAGES * PAGE};
    assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, 1, 0), (ssize_t)MAX_PAGES * PAGE);
    assert_int_equal(f->fs.reads_split, 0);
    down(f);
    /* no worker to help (none started): the caller reads it all */
    f = up((size_t)MAX_PAGES * PAGE, false);
    n = lay(f, MAX_PAGES);
    assert_int_equal(virtio_fs_read(&f->fs, f->fd, f->iov, n, 0), (ssize_t)MAX_PAGES * PAGE);
    check(f, MAX_PAGES, 0, (size_t)MAX_PAGES * PAGE);
    assert_int_equal(f->fs.reads_split, 0);
    down(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_large_read_split_in_two),
        cmocka_unit_test(test_short_reads_and_errors),
        cmocka_unit_test(test_small_or_alone_not_split),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
