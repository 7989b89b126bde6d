#include "util/fileio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int write_all(int fd, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int open_sink(const char *path)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

int pwrite_all(int fd, const void *data, size_t len, uint64_t offset)
{
    const uint8_t *p = data;
    while (len) {
        ssize_t n = pwrite(fd, p, len, (off_t)offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        p += n;
        len -= (size_t)n;
        offset += (uint64_t)n;
    }
    return 0;
}

/* A fresh temporary file beside 'path': created here and nowhere else
 * (O_EXCL: never an existing file or a symlink planted under that name). */
int atomic_file_create(struct atomic_file *f, const char *path)
{
    f->fd = -1;
    if (snprintf(f->tmp, sizeof(f->tmp), "%s.tmp-XXXXXX", path) >= (int)sizeof(f->tmp))
        return err_set(-ENAMETOOLONG, "path %s is too long", path);
    f->fd = mkostemp(f->tmp, O_CLOEXEC);
    return f->fd < 0 ? err_errno(-errno, "cannot create %s", path) : 0;
}

int atomic_file_finish(struct atomic_file *f, const char *path, int ret)
{
    if (!ret && fsync(f->fd) < 0)
        ret = err_errno(-errno, "cannot write %s", path);
    close(f->fd);
    f->fd = -1;
    if (!ret && rename(f->tmp, path) < 0)
        ret = err_errno(-errno, "cannot write %s", path);
    if (ret)
        unlink(f->tmp);
    return ret;
}
