#include "virtio/backends/blockfile.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/log.h"
#include "util/util.h"
#include "util/evloop.h"

#define RING_ENTRIES 256
#define DIRECT_ALIGNMENT 4096

/* Punching a hole past the end of the file changes nothing, but tells us
 * whether the file system can do it. */
static bool probe_punch(int fd, uint64_t size)
{
    off_t beyond = (off_t)align_up(size, 4096) + 4096;
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, beyond, 4096) == 0;
}

static int open_image(struct blockfile *bf, const char *path, bool read_only, bool direct)
{
    int flags = (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC | (direct ? O_DIRECT : 0);
    bf->fd = open(path, flags);
    if (bf->fd < 0 && direct && errno == EINVAL)
        return err_set(-EINVAL, "disk %s: the file system does not support O_DIRECT "
                                "(cache=none)", path);
    if (bf->fd < 0)
        return err_errno(-errno, "disk %s", path);
    struct stat st;
    if (fstat(bf->fd, &st) < 0)
        return err_errno(-errno, "disk %s", path);
    if (!S_ISREG(st.st_mode))
        return err_set(-EINVAL, "disk %s: not a regular file", path);
    /* An empty image is a disk of capacity 0, as in Firecracker: a
     * placeholder that PATCH /drives swaps for a real image later. */
    if (flock(bf->fd, (read_only ? LOCK_SH : LOCK_EX) | LOCK_NB) < 0)
        return err_set(-EBUSY, "disk %s: in use by another process (locked)", path);
    bf->size = (uint64_t)st.st_size & ~511ull;
    if (bf->size != (uint64_t)st.st_size && st.st_size >= 512)
        log_warn("disk %s: size is not a multiple of 512; the last %llu bytes are not "
                 "visible to the guest", path,
                 (unsigned long long)((uint64_t)st.st_size - bf->size));
    return 0;
}

int blockfile_open(struct blockfile *bf, const char *path, bool read_only, bool direct)
{
    memset(bf, 0, sizeof(*bf));
    bf->fd = bf->event_fd = -1;
    snprintf(bf->path, sizeof(bf->path), "%s", path);
    bf->read_only = read_only;
    bf->direct = direct;
    bf->alignment = direct ? DIRECT_ALIGNMENT : 1;
    int ret = open_image(bf, path, read_only, direct);
    if (ret)
        goto fail;
    bf->can_punch = !read_only && probe_punch(bf->fd, bf->size);
    ret = io_uring_queue_init(RING_ENTRIES, &bf->ring, 0);
    if (ret < 0) {
        ret = err_errno(ret, "disk %s: io_uring is not available", path);
        goto fail;
    }
    bf->ring_ready = true;
    bf->event_fd = eventfd_create();
    if (bf->event_fd < 0) {
        ret = bf->event_fd;
        goto fail;
    }
    ret = io_uring_register_eventfd(&bf->ring, bf->event_fd);
    if (ret < 0) {
        ret = err_errno(ret, "disk %s: io_uring eventfd", path);
        goto fail;
    }
    return 0;
fail:
    blockfile_close(bf);
    return ret;
}

void blockfile_close(struct blockfile *bf)
{
    /* Exiting the ring waits for requests still running in the kernel. */
    if (bf->ring_ready)
        io_uring_queue_exit(&bf->ring);
    bf->ring_ready = false;
    if (bf->event_fd >= 0)
        close(bf->event_fd);
    /* Unlock before closing: the kernel tears the ring down in the
     * background, and a request it still holds keeps the open file (and a
     * lock tied to it) alive for a moment — long enough for a restore or a
     * drive swap reopening the same image to see it "in use". */
    if (bf->fd >= 0) {
        flock(bf->fd, LOCK_UN);
        close(bf->fd);
    }
    bf->fd = bf->event_fd = -1;
}

static struct io_uring_sqe *get_sqe(struct blockfile *bf)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&bf->ring);
    if (!sqe) {
        io_uring_submit(&bf->ring);
        sqe = io_uring_get_sqe(&bf->ring);
    }
    return sqe;
}

static bool iov_aligned(const struct iovec *iov, int n, unsigned align)
{
    for (int i = 0; i < n; i++)
        if (!is_aligned((uintptr_t)iov[i].iov_base, align) || !is_aligned(iov[i].iov_len, align))
            return false;
    return true;
}

static void copy_from_iov(void *dst, const struct iovec *iov, int n)
{
    uint8_t *p = dst;
    for (int i = 0; i < n; i++) {
        memcpy(p, iov[i].iov_base, iov[i].iov_len);
        p += iov[i].iov_len;
    }
}

static void copy_to_iov(const struct iovec *iov, int n, const void *src)
{
    const uint8_t *p = src;
    for (int i = 0; i < n; i++) {
        memcpy(iov[i].iov_base, p, iov[i].iov_len);
        p += iov[i].iov_len;
    }
}

static void prep_rw(struct blockfile *bf, struct blockfile_req *req, struct io_uring_sqe *sqe)
{
    bool write = req->op == BF_WRITE;
    if (req->bounce) {
        if (write)
            io_uring_prep_write(sqe, bf->fd, req->bounce, (unsigned)req->length, req->offset);
        else
            io_uring_prep_read(sqe, bf->fd, req->bounce, (unsigned)req->length, req->offset);
    } else if (write) {
        io_uring_prep_writev(sqe, bf->fd, req->iov, (unsigned)req->iovcnt, req->offset);
    } else {
        io_uring_prep_readv(sqe, bf->fd, req->iov, (unsigned)req->iovcnt, req->offset);
    }
}

static void prep_zero(struct blockfile *bf, struct blockfile_req *req, struct io_uring_sqe *sqe)
{
    bool punch = req->op == BF_ZERO_UNMAP || bf->zero_range_unsupported;
    int mode = FALLOC_FL_KEEP_SIZE | (punch ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE);
    io_uring_prep_fallocate(sqe, bf->fd, mode, req->offset, req->length);
}

static int check_request(struct blockfile *bf, struct blockfile_req *req)
{
    if (req->op == BF_FLUSH)
        return 0;
    if (req->offset > bf->size || req->length > bf->size - req->offset)
        return -EINVAL;
    if (req->op != BF_READ && bf->read_only)
        return -EROFS;
    if ((req->op == BF_ZERO || req->op == BF_ZERO_UNMAP) && !bf->can_punch)
        return -EOPNOTSUPP;
    return 0;
}

int blockfile_queue(struct blockfile *bf, struct blockfile_req *req)
{
    int ret = check_request(bf, req);
    if (ret)
        return ret;
    struct io_uring_sqe *sqe = get_sqe(bf);
    if (!sqe)
        return -EAGAIN;
    req->bounce = NULL;
    bool rw = req->op == BF_READ || req->op == BF_WRITE;
    if (rw && bf->direct && !iov_aligned(req->iov, req->iovcnt, bf->alignment)) {
        if (posix_memalign(&req->bounce, bf->alignment, align_up(req->length, bf->alignment)))
            return -ENOMEM;
        if (req->op == BF_WRITE)
            copy_from_iov(req->bounce, req->iov, req->iovcnt);
    }
    switch (req->op) {
    case BF_READ:
    case BF_WRITE:
        prep_rw(bf, req, sqe);
        break;
    case BF_FLUSH:
        req->length = 0;
        io_uring_prep_fsync(sqe, bf->fd, IORING_FSYNC_DATASYNC);
        /* Starts only after every earlier request finished, so what the
         * guest saw complete before its flush is what becomes durable. */
        sqe->flags |= IOSQE_IO_DRAIN;
        break;
    case BF_ZERO:
    case BF_ZERO_UNMAP:
        prep_zero(bf, req, sqe);
        break;
    }
    io_uring_sqe_set_data(sqe, req);
    bf->inflight++;
    return 0;
}

void blockfile_submit(struct blockfile *bf)
{
    int ret = io_uring_submit(&bf->ring);
    if (ret < 0)
        log_guest("disk %s: io_uring submit failed: %s", bf->path, strerror(-ret));
}

/* A short read or write inside the image (rare: signals, odd file systems)
 * is finished synchronously rather than reported as an error. */
static int finish_short(struct blockfile *bf, struct blockfile_req *req, uint64_t done)
{
    while (done < req->length) {
        uint8_t *base = NULL;
        uint64_t skip = done;
        int i = 0;
        if (req->bounce) {
            base = (uint8_t *)req->bounce + done;
        } else {
            while (i < req->iovcnt && skip >= req->iov[i].iov_len)
                skip -= req->iov[i++].iov_len;
            base = (uint8_t *)req->iov[i].iov_base + skip;
        }
        size_t chunk = req->bounce ? req->length - done : req->iov[i].iov_len - skip;
        ssize_t n = req->op == BF_WRITE ? pwrite(bf->fd, base, chunk, (off_t)(req->offset + done))
                               : pread(bf->fd, base, chunk, (off_t)(req->offset + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        done += (uint64_t)n;
    }
    return 0;
}

static int complete_one(struct blockfile *bf, struct blockfile_req *req, int res)
{
    bool rw = req->op == BF_READ || req->op == BF_WRITE;
    if (rw && res >= 0 && (uint64_t)res < req->length)
        res = finish_short(bf, req, (uint64_t)res);
    else if (res > 0)
        res = 0;
    if (req->bounce) {
        if (res == 0 && req->op == BF_READ)
            copy_to_iov(req->iov, req->iovcnt, req->bounce);
        free(req->bounce);
        req->bounce = NULL;
    }
    return res;
}

int blockfile_drain(struct blockfile *bf)
{
    blockfile_submit(bf);
    while (bf->inflight) {
        struct io_uring_cqe *cqe;
        int ret = io_uring_wait_cqe(&bf->ring, &cqe);
        if (ret == -EINTR)
            continue;
        if (ret < 0)
            return err_set(ret, "disk %s: waiting for %u requests in flight: %s", bf->path,
                           bf->inflight, strerror(-ret));
        blockfile_reap(bf);
    }
    return 0;
}

void blockfile_reap(struct blockfile *bf)
{
    eventfd_drain(bf->event_fd);
    struct io_uring_cqe *cqe;
    while (io_uring_peek_cqe(&bf->ring, &cqe) == 0) {
        struct blockfile_req *req = io_uring_cqe_get_data(cqe);
        int res = cqe->res;
        io_uring_cqe_seen(&bf->ring, cqe);
        bf->inflight--;
        if (!req)
            continue;
        /* No in-place zeroing here: remember, and punch instead. */
        if (req->op == BF_ZERO && res == -EOPNOTSUPP && !bf->zero_range_unsupported) {
            bf->zero_range_unsupported = true;
            if (blockfile_queue(bf, req) == 0) {
                blockfile_submit(bf);
                continue;
            }
        }
        req->done(req, complete_one(bf, req, res));
    }
}
