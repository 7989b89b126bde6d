/* ioperf: block I/O figures for ember's benchmark, in the guest or on the host.
 *
 *   ioperf seqwrite|seqread FILE MIB [BLOCK_KIB]   sequential, 1 MiB blocks by default
 *   ioperf randread FILE SECONDS [BLOCK_KIB]       random reads, 4 KiB blocks by default
 *
 * Uses O_DIRECT when the file system allows it (says which). Prints one line:
 *   ioperf: <mode> <MB/s> MB/s <IOPS> IOPS direct=<0|1>
 * A measuring tool for ember's bench, not part of ember. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_file(const char *path, int flags, int *direct)
{
    int fd = open(path, flags | O_DIRECT);
    *direct = fd >= 0;
    if (fd < 0 && errno == EINVAL)
        fd = open(path, flags);
    if (fd < 0) {
        perror(path);
        exit(1);
    }
    return fd;
}

static uint64_t file_size(int fd)
{
    struct stat st;
    uint64_t size = 0;
    if (fstat(fd, &st) == 0 && S_ISBLK(st.st_mode))
        ioctl(fd, BLKGETSIZE64, &size);
    else if (fstat(fd, &st) == 0)
        size = (uint64_t)st.st_size;
    return size;
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: ioperf seqwrite|seqread FILE MIB [BLOCK_KIB] | "
                        "randread FILE SECONDS [BLOCK_KIB]\n");
        return 2;
    }
    const char *mode = argv[1], *path = argv[2];
    long amount = atol(argv[3]);
    int rand_mode = !strcmp(mode, "randread"), write_mode = !strcmp(mode, "seqwrite");
    size_t block = (size_t)(argc > 4 ? atol(argv[4]) : (rand_mode ? 4 : 1024)) * 1024;
    int direct;
    int fd = open_file(path, write_mode ? O_WRONLY : O_RDONLY, &direct);
    void *buf;
    if (posix_memalign(&buf, 4096, block))
        return 1;
    memset(buf, 0x5a, block);
    uint64_t size = file_size(fd), ops = 0;
    double start = now(), end;
    if (rand_mode) {
        uint64_t blocks = size / block;
        if (!blocks)
            return 1;
        srandom(1);
        while ((end = now()) - start < (double)amount) {
            for (int i = 0; i < 64; i++, ops++) {
                uint64_t b = ((uint64_t)random() << 31 | (uint64_t)random()) % blocks;
                if (pread(fd, buf, block, (off_t)(b * block)) != (ssize_t)block) {
                    perror("pread");
                    return 1;
                }
            }
        }
    } else {
        uint64_t total = (uint64_t)amount << 20;
        for (uint64_t off = 0; off < total; off += block, ops++) {
            ssize_t n = write_mode ? pwrite(fd, buf, block, (off_t)off)
                                   : pread(fd, buf, block, (off_t)off);
            if (n != (ssize_t)block) {
                perror(mode);
                return 1;
            }
        }
        if (write_mode && fdatasync(fd) < 0)
            perror("fdatasync");
        end = now();
    }
    double secs = end - start;
    printf("ioperf: %s %.1f MB/s %.0f IOPS direct=%d\n", mode,
           (double)ops * (double)block / 1e6 / secs, (double)ops / secs, direct);
    return 0;
}
