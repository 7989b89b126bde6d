/* fsexercise: POSIX file-system semantics checked in a directory (in the
 * guest, on a virtio-fs share): create/write/read, rename (and
 * RENAME_NOREPLACE), hard and symbolic links, writing to an unlinked open
 * file, O_APPEND, O_TRUNC, truncate, fallocate (and punching holes), lseek
 * SEEK_DATA/SEEK_HOLE, extended attributes, mkdir/rmdir (ENOTEMPTY),
 * readdir after many creates, permissions for another user, mmap, fsync,
 * copy_file_range, times, and a large file read back with a checksum.
 * With --ro (DIR holding a file and an empty directory), every change must
 * fail with EROFS and reads must work.
 * One line per check ("ok NAME" or "FAIL NAME: why") and a summary line;
 * exit status 0 only if every check passed.
 * Usage: fsexercise [--ro] [-n ENTRIES] [-b MIB] DIR */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <unistd.h>

static int passed, failed;
static char why[512]; /* the first failure of the current check */

/* Record a failed expectation; the check goes on to its end. */
static bool need(bool cond, const char *fmt, ...)
{
    if (!cond && !why[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, sizeof(why), fmt, ap);
        va_end(ap);
        size_t n = strlen(why);
        if (errno)
            snprintf(why + n, sizeof(why) - n, " (errno %d: %s)", errno, strerror(errno));
    }
    return cond;
}

static void run(const char *name, void (*check)(void))
{
    why[0] = 0;
    errno = 0;
    check();
    if (why[0]) {
        printf("FAIL %s: %s\n", name, why);
        failed++;
    } else {
        printf("ok %s\n", name);
        passed++;
    }
    fflush(stdout);
}

/* --- helpers --------------------------------------------------------------- */

static void fill(uint8_t *buf, size_t len, uint32_t seed)
{
    for (size_t i = 0; i < len; i++) {
        seed = seed * 1103515245u + 12345u;
        buf[i] = (uint8_t)(seed >> 16);
    }
}

static bool write_file(const char *path, const void *data, size_t len, int flags)
{
    int fd = open(path, O_WRONLY | O_CREAT | flags, 0644);
    if (!need(fd >= 0, "open %s", path))
        return false;
    bool ok = need(write(fd, data, len) == (ssize_t)len, "write %s", path);
    close(fd);
    return ok;
}

static ssize_t read_file(const char *path, void *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (!need(fd >= 0, "open %s", path))
        return -1;
    ssize_t n = read(fd, buf, cap);
    close(fd);
    return n;
}

static bool content_is(const char *path, const char *text)
{
    char buf[256];
    ssize_t n = read_file(path, buf, sizeof(buf) - 1);
    if (n < 0)
        return false;
    buf[n] = 0;
    return need(!strcmp(buf, text), "%s holds '%s', expected '%s'", path, buf, text);
}

static bool gone(const char *path)
{
    struct stat st;
    return need(lstat(path, &st) < 0 && errno == ENOENT, "%s still exists", path);
}

static off_t size_of(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? st.st_size : -1;
}

/* --- the read-write checks ---------------------------------------------------- */

static void check_create_write_read(void)
{
    static uint8_t out[65536], in[65536];
    fill(out, sizeof(out), 1);
    write_file("cwr", out, sizeof(out), O_EXCL);
    need(read_file("cwr", in, sizeof(in)) == (ssize_t)sizeof(in), "short read");
    need(!memcmp(in, out, sizeof(in)), "read back differs");
    need(open("cwr", O_WRONLY | O_CREAT | O_EXCL, 0644) < 0 && errno == EEXIST,
         "O_EXCL on an existing file");
    errno = 0;
    int fd = open("cwr", O_WRONLY | O_TRUNC);
    need(fd >= 0 && size_of("cwr") == 0, "O_TRUNC left %lld bytes", (long long)size_of("cwr"));
    close(fd);
    need(unlink("cwr") == 0 && gone("cwr"), "unlink");
}

static void check_rename(void)
{
    write_file("ra", "A", 1, O_TRUNC);
    write_file("rb", "B", 1, O_TRUNC);
    need(rename("ra", "rc") == 0, "rename ra rc");
    gone("ra");
    content_is("rc", "A");
    need(rename("rc", "rb") == 0, "rename over an existing file");
    content_is("rb", "A");
    write_file("rd", "D", 1, O_TRUNC);
    need(syscall(SYS_renameat2, AT_FDCWD, "rd", AT_FDCWD, "rb", RENAME_NOREPLACE) < 0 &&
             errno == EEXIST, "RENAME_NOREPLACE over an existing file");
    errno = 0;
    need(mkdir("rdir", 0755) == 0 && rename("rb", "rdir/rb") == 0, "rename into a directory");
    content_is("rdir/rb", "A");
    need(rename("rdir", "rdir2") == 0, "rename a directory");
    content_is("rdir2/rb", "A");
    unlink("rdir2/rb");
    rmdir("rdir2");
    unlink("rd");
}

static void check_links(void)
{
    write_file("lf", "linked", 6, O_TRUNC);
    need(link("lf", "lf2") == 0, "link");
    struct stat a, b;
    need(stat("lf", &a) == 0 && stat("lf2", &b) == 0, "stat");
    need(a.st_ino == b.st_ino && a.st_nlink == 2, "hard link: inodes %llu/%llu, nlink %u",
         (unsigned long long)a.st_ino, (unsigned long long)b.st_ino, (unsigned)a.st_nlink);
    need(unlink("lf2") == 0 && stat("lf", &a) == 0 && a.st_nlink == 1, "nlink after unlink");
    need(symlink("lf", "ls") == 0, "symlink");
    char target[64] = {0};
    need(readlink("ls", target, sizeof(target) - 1) == 2 && !strcmp(target, "lf"), "readlink");
    need(lstat("ls", &a) == 0 && S_ISLNK(a.st_mode), "lstat of a symlink");
    content_is("ls", "linked");
    need(symlink("/nonexistent/elsewhere", "ldangle") == 0, "a dangling symlink");
    need(open("ldangle", O_RDONLY) < 0 && errno == ENOENT, "open through a dangling symlink");
    errno = 0;
    unlink("ls");
    unlink("ldangle");
    unlink("lf");
}

static void check_unlinked_open_file(void)
{
    int fd = open("uo", O_RDWR | O_CREAT | O_TRUNC, 0644);
    if (!need(fd >= 0, "open"))
        return;
    need(write(fd, "before", 6) == 6 && unlink("uo") == 0, "write, unlink");
    gone("uo");
    need(write(fd, "-after", 6) == 6, "write after unlink");
    struct stat st;
    need(fstat(fd, &st) == 0 && st.st_size == 12 && st.st_nlink == 0,
         "fstat after unlink: size %lld nlink %u", (long long)st.st_size, (unsigned)st.st_nlink);
    char buf[16] = {0};
    need(pread(fd, buf, 12, 0) == 12 && !memcmp(buf, "before-after", 12), "read after unlink");
    close(fd);
}

static void check_append(void)
{
    int a = open("ap", O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
    int b = open("ap", O_WRONLY | O_APPEND);
    need(a >= 0 && b >= 0, "open");
    need(write(a, "11", 2) == 2 && write(b, "22", 2) == 2 && write(a, "33", 2) == 2, "write");
    need(pwrite(b, "44", 2, 0) == 2, "pwrite"); /* Linux: O_APPEND wins over the offset */
    close(a);
    close(b);
    content_is("ap", "11223344");
    unlink("ap");
}

static void check_truncate(void)
{
    write_file("tr", "0123456789abcdef", 16, O_TRUNC);
    need(truncate("tr", 10) == 0 && size_of("tr") == 10, "truncate shorter");
    content_is("tr", "0123456789");
    need(truncate("tr", 1 << 20) == 0 && size_of("tr") == 1 << 20, "truncate longer");
    int fd = open("tr", O_RDWR);
    char buf[8] = {1};
    need(pread(fd, buf, 8, 1000000) == 8 && !memcmp(buf, "\0\0\0\0\0\0\0\0", 8),
         "the extended part reads zeroes");
    need(ftruncate(fd, 4) == 0 && size_of("tr") == 4, "ftruncate");
    close(fd);
    unlink("tr");
}

static void check_fallocate(void)
{
    int fd = open("fa", O_RDWR | O_CREAT | O_TRUNC, 0644);
    struct stat st;
    need(fallocate(fd, 0, 0, 1 << 20) == 0, "fallocate 1 MiB");
    need(fstat(fd, &st) == 0 && st.st_size == 1 << 20 && st.st_blocks * 512 >= 1 << 20,
         "size %lld blocks %lld", (long long)st.st_size, (long long)st.st_blocks);
    need(fallocate(fd, FALLOC_FL_KEEP_SIZE, 1 << 20, 1 << 20) == 0 && fstat(fd, &st) == 0 &&
             st.st_size == 1 << 20, "KEEP_SIZE changed the size");
    static uint8_t data[65536], back[65536];
    fill(data, sizeof(data), 2);
    need(pwrite(fd, data, sizeof(data), 0) == (ssize_t)sizeof(data), "write");
    need(fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 4096, 8192) == 0,
         "punch a hole");
    need(pread(fd, back, sizeof(back), 0) == (ssize_t)sizeof(back), "read");
    memset(data + 4096, 0, 8192);
    need(!memcmp(back, data, sizeof(back)), "the punched range does not read zeroes");
    close(fd);
    unlink("fa");
}

static void check_seek_data_hole(void)
{
    int fd = open("sk", O_RDWR | O_CREAT | O_TRUNC, 0644);
    static uint8_t data[4096];
    fill(data, sizeof(data), 3);
    const off_t far = 8 << 20;
    need(pwrite(fd, data, sizeof(data), 0) == 4096 && pwrite(fd, data, 4096, far) == 4096 &&
             fsync(fd) == 0, "write");
    off_t d0 = lseek(fd, 0, SEEK_DATA), h0 = lseek(fd, 0, SEEK_HOLE);
    off_t d1 = lseek(fd, 65536, SEEK_DATA), h1 = lseek(fd, far, SEEK_HOLE);
    need(d0 == 0, "SEEK_DATA from 0: %lld", (long long)d0);
    need(h0 >= 4096 && h0 < far, "SEEK_HOLE from 0: %lld", (long long)h0);
    need(d1 > 65536 && d1 <= far, "SEEK_DATA past the hole: %lld", (long long)d1);
    need(h1 == far + 4096, "SEEK_HOLE at the end: %lld", (long long)h1);
    errno = 0;
    need(lseek(fd, far + 8192, SEEK_DATA) < 0 && errno == ENXIO, "SEEK_DATA past the end");
    errno = 0;
    close(fd);
    unlink("sk");
}

static void check_xattrs(void)
{
    write_file("xa", "x", 1, O_TRUNC);
    need(setxattr("xa", "user.ember", "value", 5, 0) == 0, "setxattr");
    char buf[256] = {0};
    need(getxattr("xa", "user.ember", buf, sizeof(buf)) == 5 && !memcmp(buf, "value", 5),
         "getxattr");
    need(getxattr("xa", "user.ember", NULL, 0) == 5, "getxattr's size");
    ssize_t n = listxattr("xa", buf, sizeof(buf));
    bool listed = false;
    for (ssize_t at = 0; n > 0 && at < n; at += (ssize_t)strlen(buf + at) + 1)
        listed |= !strcmp(buf + at, "user.ember");
    need(listed, "listxattr does not list it");
    need(setxattr("xa", "user.ember", "v", 1, XATTR_CREATE) < 0 && errno == EEXIST,
         "XATTR_CREATE over an existing one");
    errno = 0;
    need(removexattr("xa", "user.ember") == 0, "removexattr");
    need(getxattr("xa", "user.ember", buf, sizeof(buf)) < 0 && errno == ENODATA,
         "getxattr after removexattr");
    errno = 0;
    unlink("xa");
}

static void check_mkdir_rmdir(void)
{
    need(mkdir("md", 0755) == 0, "mkdir");
    need(mkdir("md", 0755) < 0 && errno == EEXIST, "mkdir of an existing name");
    errno = 0;
    write_file("md/inside", "i", 1, O_TRUNC);
    need(rmdir("md") < 0 && (errno == ENOTEMPTY || errno == EEXIST), "rmdir of a non-empty one");
    errno = 0;
    need(rmdir("md/inside") < 0 && errno == ENOTDIR, "rmdir of a file");
    errno = 0;
    need(unlink("md") < 0 && (errno == EISDIR || errno == EPERM), "unlink of a directory");
    errno = 0;
    need(unlink("md/inside") == 0 && rmdir("md") == 0 && gone("md"), "rmdir once empty");
}

static int entries = 10000;

static void check_readdir_many(void)
{
    need(mkdir("many", 0755) == 0, "mkdir");
    char name[64];
    for (int i = 0; i < entries && !why[0]; i++) {
        snprintf(name, sizeof(name), "many/entry-%d", i);
        int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0644);
        need(fd >= 0, "create %s", name);
        close(fd);
    }
    uint8_t *seen = calloc((size_t)entries, 1);
    DIR *d = opendir("many");
    int found = 0, dots = 0, dupes = 0, strangers = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        int i;
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            dots++;
        else if (sscanf(e->d_name, "entry-%d", &i) == 1 && i >= 0 && i < entries)
            seen[i]++ ? dupes++ : found++;
        else
            strangers++;
    }
    if (d)
        closedir(d);
    need(found == entries && dots == 2 && !dupes && !strangers,
         "readdir: %d of %d, %d dots, %d repeated, %d unknown", found, entries, dots, dupes,
         strangers);
    free(seen);
    for (int i = 0; i < entries; i++) {
        snprintf(name, sizeof(name), "many/entry-%d", i);
        unlink(name);
    }
    need(rmdir("many") == 0, "rmdir after unlinking every entry");
}

/* As another user: the mode bits decide (the guest checks them). */
static int as_user(const char *path, int flags)
{
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(1000) < 0 || setuid(1000) < 0)
            _exit(100);
        int fd = open(path, flags);
        _exit(fd >= 0 ? 0 : errno == EACCES ? 13 : 101);
    }
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 102;
}

static void check_permissions(void)
{
    write_file("pm", "p", 1, O_TRUNC);
    struct stat st;
    need(chmod("pm", 0600) == 0 && stat("pm", &st) == 0 && (st.st_mode & 07777) == 0600,
         "chmod 0600");
    if (geteuid() == 0) {
        need(as_user("pm", O_RDONLY) == 13, "another user read a 0600 file");
        need(chmod("pm", 0644) == 0 && as_user("pm", O_RDONLY) == 0, "another user's read");
        need(as_user("pm", O_WRONLY) == 13, "another user wrote a 0644 file");
    }
    need(chmod("pm", 04755) == 0 && stat("pm", &st) == 0, "chmod 04755");
    need(!(st.st_mode & S_ISUID), "a set-user-ID bit reached the host's file");
    struct timespec ts[2] = {{1000000000, 0}, {1234567890, 0}};
    need(utimensat(AT_FDCWD, "pm", ts, 0) == 0 && stat("pm", &st) == 0 &&
             st.st_mtime == 1234567890, "utimensat: mtime %lld", (long long)st.st_mtime);
    unlink("pm");
}

static void check_mmap_fsync(void)
{
    int fd = open("mm", O_RDWR | O_CREAT | O_TRUNC, 0644);
    need(fd >= 0 && ftruncate(fd, 65536) == 0, "create");
    uint8_t *p = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (!need(p != MAP_FAILED, "mmap")) {
        close(fd);
        return;
    }
    fill(p, 65536, 4);
    need(msync(p, 65536, MS_SYNC) == 0, "msync");
    static uint8_t back[65536];
    need(pread(fd, back, sizeof(back), 0) == 65536 && !memcmp(back, p, 65536),
         "read() does not see the mapping's stores");
    munmap(p, 65536);
    need(fsync(fd) == 0 && fdatasync(fd) == 0, "fsync");
    int dfd = open(".", O_RDONLY | O_DIRECTORY);
    need(dfd >= 0 && fsync(dfd) == 0, "fsync of a directory");
    close(dfd);
    int cfd = open("mm-copy", O_RDWR | O_CREAT | O_TRUNC, 0644);
    loff_t in = 0, out = 0;
    need(copy_file_range(fd, &in, cfd, &out, 65536, 0) == 65536, "copy_file_range");
    need(pread(cfd, back, sizeof(back), 0) == 65536, "read the copy");
    fill(p = malloc(65536), 65536, 4);
    need(!memcmp(back, p, 65536), "the copy differs");
    free(p);
    struct statfs sf;
    need(fstatfs(fd, &sf) == 0 && sf.f_bsize > 0 && sf.f_blocks > 0, "statfs");
    close(cfd);
    close(fd);
    unlink("mm");
    unlink("mm-copy");
}

static int big_mib = 16;

static void check_big_file(void)
{
    const size_t chunk = 1 << 20;
    uint8_t *buf = malloc(chunk), *back = malloc(chunk);
    uint64_t sum_out = 0, sum_in = 0;
    int fd = open("big", O_RDWR | O_CREAT | O_TRUNC, 0644);
    for (int i = 0; i < big_mib && !why[0]; i++) {
        fill(buf, chunk, (uint32_t)i + 100);
        for (size_t j = 0; j < chunk; j += 8)
            sum_out = sum_out * 31 + *(uint64_t *)(buf + j);
        need(write(fd, buf, chunk) == (ssize_t)chunk, "write MiB %d", i);
    }
    need(fsync(fd) == 0 && close(fd) == 0, "fsync, close");
    fd = open("big", O_RDONLY);
    for (int i = 0; i < big_mib && !why[0]; i++) {
        need(read(fd, back, chunk) == (ssize_t)chunk, "read MiB %d", i);
        for (size_t j = 0; j < chunk; j += 8)
            sum_in = sum_in * 31 + *(uint64_t *)(back + j);
    }
    close(fd);
    need(sum_in == sum_out, "%d MiB read back with another checksum", big_mib);
    printf("big-file %d MiB checksum %016llx\n", big_mib, (unsigned long long)sum_in);
    unlink("big");
    free(buf);
    free(back);
}

/* --- read-only ---------------------------------------------------------------- */

static bool erofs(int ret, const char *what)
{
    bool ok = need(ret < 0 && errno == EROFS, "%s: %s", what,
                   ret < 0 ? "not EROFS" : "succeeded");
    errno = 0;
    return ok;
}

static char ro_file[300], ro_dir[300]; /* a file and a directory the share already holds */

static void check_ro_reads(void)
{
    DIR *d = opendir(".");
    int n = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        struct stat st;
        bool dots = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");
        if (lstat(e->d_name, &st) == 0 && S_ISREG(st.st_mode) && !ro_file[0])
            snprintf(ro_file, sizeof(ro_file), "%s", e->d_name);
        if (!dots && lstat(e->d_name, &st) == 0 && S_ISDIR(st.st_mode) && !ro_dir[0])
            snprintf(ro_dir, sizeof(ro_dir), "%s", e->d_name);
        n++;
    }
    if (d)
        closedir(d);
    need(n > 2 && ro_file[0] && ro_dir[0], "the read-only share needs a file and a directory");
    char buf[64];
    need(ro_file[0] && read_file(ro_file, buf, sizeof(buf)) >= 0, "read %s", ro_file);
    struct statfs sf;
    need(statfs(".", &sf) == 0, "statfs");
}

static void check_ro_writes(void)
{
    erofs(open("ro-new", O_WRONLY | O_CREAT, 0644), "create");
    erofs(open(ro_file, O_WRONLY), "open for writing");
    erofs(open(ro_file, O_RDWR | O_APPEND), "open for appending");
    erofs(open(ro_file, O_RDONLY | O_TRUNC), "O_TRUNC");
    erofs(truncate(ro_file, 0), "truncate");
    erofs(mkdir("ro-dir", 0755), "mkdir");
    erofs(rmdir(ro_dir), "rmdir");
    erofs(unlink(ro_file), "unlink");
    erofs(rename(ro_file, "ro-renamed"), "rename");
    erofs(link(ro_file, "ro-link"), "link");
    erofs(symlink(ro_file, "ro-sym"), "symlink");
    erofs(mknod("ro-fifo", S_IFIFO | 0644, 0), "mknod");
    erofs(chmod(ro_file, 0600), "chmod");
    erofs(utimensat(AT_FDCWD, ro_file, NULL, 0), "utimensat");
    erofs(setxattr(ro_file, "user.ember", "v", 1, 0), "setxattr");
    erofs(removexattr(ro_file, "user.ember"), "removexattr");
}

int main(int argc, char **argv)
{
    bool ro = false;
    static const struct option longs[] = {{"ro", no_argument, NULL, 'r'}, {0}};
    int opt;
    while ((opt = getopt_long(argc, argv, "rn:b:", longs, NULL)) != -1) {
        switch (opt) {
        case 'r': ro = true; break;
        case 'n': entries = atoi(optarg); break;
        case 'b': big_mib = atoi(optarg); break;
        default: goto usage;
        }
    }
    if (optind != argc - 1 || entries < 1 || big_mib < 1)
        goto usage;
    if (chdir(argv[optind]) < 0) {
        perror(argv[optind]);
        return 2;
    }
    if (ro) {
        run("ro-reads", check_ro_reads);
        run("ro-writes-erofs", check_ro_writes);
    } else {
        run("create-write-read", check_create_write_read);
        run("rename", check_rename);
        run("links", check_links);
        run("unlinked-open-file", check_unlinked_open_file);
        run("append", check_append);
        run("truncate", check_truncate);
        run("fallocate", check_fallocate);
        run("seek-data-hole", check_seek_data_hole);
        run("xattrs", check_xattrs);
        run("mkdir-rmdir", check_mkdir_rmdir);
        run("readdir-many", check_readdir_many);
        run("permissions-times", check_permissions);
        run("mmap-fsync-copy", check_mmap_fsync);
        run("big-file", check_big_file);
    }
    printf("fsexercise: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
usage:
    fprintf(stderr, "usage: fsexercise [--ro] [-n ENTRIES] [-b MIB] DIR\n");
    return 2;
}
