/* libFuzzer target: a hostile driver against the virtio-fs server. The
 * input is a sequence of requests, each [u16 length][u8 out room][bytes],
 * sent with its bytes split into three buffers at points the input picks,
 * to a server sharing a small temporary directory (a read-only one for
 * inputs whose first byte is odd). Requests that would make the host's disk
 * grow without bound (WRITE, FALLOCATE, COPY_FILE_RANGE, SETATTR's size)
 * are skipped on the writable share; every few inputs the server is reset
 * so that its tables do not stay full. Nothing may crash, read or write
 * outside the buffers given, or leak. */
#include <fcntl.h>
#include <linux/fuse.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "virtio/backends/fs_server.h"

static struct fsrv *servers[2];

static void make_tree(const char *dir)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/file", dir);
    int fd = open(p, O_CREAT | O_WRONLY, 0644);
    if (fd >= 0) {
        (void)!write(fd, "0123456789abcdef", 16);
        close(fd);
    }
    snprintf(p, sizeof(p), "%s/sub", dir);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/link", dir);
    (void)!symlink("/etc/passwd", p);
    snprintf(p, sizeof(p), "%s/fifo", dir);
    mkfifo(p, 0600);
}

static void setup(void)
{
    for (int i = 0; i < 2; i++) {
        char dir[] = "/tmp/ember-fuzz-fs-XXXXXX";
        if (!mkdtemp(dir))
            abort();
        make_tree(dir);
        struct fsrv_limits lim = {64, 16, 4}; /* few descriptors: closed and reopened */
        if (fsrv_open(&servers[i], dir, i == 1, FS_CACHE_MODE_AUTO, &lim))
            abort();
    }
}

static bool grows_disk(const uint8_t *req, size_t len)
{
    if (len < sizeof(struct fuse_in_header))
        return false;
    uint32_t op;
    memcpy(&op, req + 4, sizeof(op));
    return op == FUSE_WRITE || op == FUSE_FALLOCATE || op == FUSE_COPY_FILE_RANGE ||
           op == FUSE_SETATTR;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static unsigned runs;
    if (!servers[0])
        setup();
    if (size < 1)
        return 0;
    bool ro = data[0] & 1;
    struct fsrv *s = servers[ro];
    if (++runs % 64 == 0)
        fsrv_reset(s);
    static uint8_t out[70000];
    for (size_t at = 1; at + 3 <= size;) {
        size_t len = (size_t)data[at] | (size_t)data[at + 1] << 8;
        size_t room = (size_t)data[at + 2] * 256 + (data[at + 2] & 1 ? 15 : 0);
        at += 3;
        if (len > size - at)
            len = size - at;
        const uint8_t *req = data + at;
        at += len;
        if (!ro && grows_disk(req, len))
            continue;
        /* Copies, so that reading past a buffer is caught. */
        size_t a = len ? req[0] % (len + 1) : 0, b = a + (len - a) / 2;
        uint8_t *p0 = malloc(a + 1), *p1 = malloc(b - a + 1), *p2 = malloc(len - b + 1);
        memcpy(p0, req, a);
        memcpy(p1, req + a, b - a);
        memcpy(p2, req + b, len - b);
        struct iovec in[3] = {{p0, a}, {p1, b - a}, {p2, len - b}};
        if (room > sizeof(out))
            room = sizeof(out);
        struct iovec o[2] = {{out, room / 3}, {out + room / 3, room - room / 3}};
        size_t n = fsrv_handle(s, in, 3, o, 2);
        if (n > room)
            abort();
        free(p0);
        free(p1);
        free(p2);
    }
    return 0;
}
