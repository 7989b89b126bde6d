/* fsperf: a file system's speed from inside a guest, for the fs bench
 * suite: sequential write (with the fsync) and read of one file in 1 MiB
 * blocks, random 4 KiB reads of it (O_DIRECT where the file system allows,
 * else buffered), and metadata operations: FILES empty files created, each
 * stat()ed, each unlinked, in one directory. The page cache is dropped
 * before each read pass (when run as root), so reads reach the device.
 * Usage: fsperf DIR MIB FILES (FILES 0: the data passes only) */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLOCK (1u << 20)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "fsperf: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "3", 1) < 0)
            fprintf(stderr, "fsperf: cannot drop the page cache\n");
        close(fd);
    }
}

static void sequential(const char *path, unsigned mib)
{
    uint8_t *buf = aligned_alloc(4096, BLOCK);
    if (!buf)
        die("memory");
    for (unsigned i = 0; i < BLOCK; i++)
        buf[i] = (uint8_t)(i * 7 + 3);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die(path);
    double t0 = now();
    for (unsigned i = 0; i < mib; i++)
        if (write(fd, buf, BLOCK) != (ssize_t)BLOCK)
            die("write");
    if (fsync(fd) < 0)
        die("fsync");
    double t1 = now();
    close(fd);
    printf("fsperf: seqwrite %.1f MB/s\n", mib * (double)BLOCK / 1e6 / (t1 - t0));
    drop_caches();
    fd = open(path, O_RDONLY);
    if (fd < 0)
        die(path);
    t0 = now();
    for (unsigned i = 0; i < mib; i++)
        if (read(fd, buf, BLOCK) != (ssize_t)BLOCK)
            die("read");
    t1 = now();
    close(fd);
    printf("fsperf: seqread %.1f MB/s\n", mib * (double)BLOCK / 1e6 / (t1 - t0));
    free(buf);
}

static void random_reads(const char *path, unsigned mib, double seconds)
{
    drop_caches();
    int direct = 1;
    int fd = open(path, O_RDONLY | O_DIRECT);
    if (fd < 0) {
        direct = 0;
        fd = open(path, O_RDONLY);
    }
    if (fd < 0)
        die(path);
    void *buf = aligned_alloc(4096, 4096);
    uint64_t pages = (uint64_t)mib << 8, seed = 88172645463325252ull, n = 0;
    double t0 = now(), t1 = t0;
    while (t1 - t0 < seconds) {
        for (int i = 0; i < 64; i++, n++) {
            seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
            if (pread(fd, buf, 4096, (off_t)((seed % pages) << 12)) != 4096)
                die("pread");
        }
        t1 = now();
    }
    close(fd);
    free(buf);
    printf("fsperf: randread %.0f IOPS direct=%d\n", (double)n / (t1 - t0), direct);
}

static void metadata(const char *dir, unsigned files)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/fsperf-meta", dir);
    if (mkdir(path, 0755) < 0 && errno != EEXIST)
        die(path);
    double t[4];
    t[0] = now();
    for (unsigned i = 0; i < files; i++) {
        snprintf(path, sizeof(path), "%s/fsperf-meta/f%u", dir, i);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
            die(path);
        close(fd);
    }
    t[1] = now();
    struct stat st;
    for (unsigned i = 0; i < files; i++) {
        snprintf(path, sizeof(path), "%s/fsperf-meta/f%u", dir, i);
        if (stat(path, &st) < 0)
            die(path);
    }
    t[2] = now();
    for (unsigned i = 0; i < files; i++) {
        snprintf(path, sizeof(path), "%s/fsperf-meta/f%u", dir, i);
        if (unlink(path) < 0)
            die(path);
    }
    t[3] = now();
    snprintf(path, sizeof(path), "%s/fsperf-meta", dir);
    rmdir(path);
    printf("fsperf: meta %u files %.0f ops/s (create %.0f stat %.0f unlink %.0f)\n", files,
           3.0 * files / (t[3] - t[0]), files / (t[1] - t[0]), files / (t[2] - t[1]),
           files / (t[3] - t[2]));
}

int main(int argc, char **argv)
{
    if (argc != 4 || atoi(argv[2]) < 1 || atoi(argv[3]) < 0) {
        fprintf(stderr, "usage: fsperf DIR MIB FILES\n");
        return 2;
    }
    unsigned mib = (unsigned)atoi(argv[2]), files = (unsigned)atoi(argv[3]);
    char path[4096];
    snprintf(path, sizeof(path), "%s/fsperf.dat", argv[1]);
    sequential(path, mib);
    random_reads(path, mib, 3.0);
    unlink(path);
    drop_caches();
    if (files)
        metadata(argv[1], files);
    printf("fsperf: done\n");
    return 0;
}
