#include "util/usock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fill_addr(const char *path, struct sockaddr_un *addr)
{
    memset(addr, 0, sizeof(*addr));
    addr->sun_family = AF_UNIX;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof(addr->sun_path))
        return -ENAMETOOLONG;
    memcpy(addr->sun_path, path, n);
    return 0;
}

/* A socket file left behind by a dead process is removed; a live one is not. */
static int clear_stale_socket(const char *path, const char *what, const struct sockaddr_un *addr)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : err_errno(-errno, "%s %s", what, path);
    if (!S_ISSOCK(st.st_mode))
        return err_set(-EEXIST, "%s %s: the path exists and is not a socket", what, path);
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (probe < 0)
        return err_errno(-errno, "socket failed");
    int live = connect(probe, (const struct sockaddr *)addr, sizeof(*addr)) == 0;
    int connect_errno = errno;
    close(probe);
    if (live)
        return err_set(-EADDRINUSE, "%s %s: another process is serving on it", what, path);
    if (connect_errno != ECONNREFUSED)
        return err_set(-connect_errno, "%s %s: cannot tell whether it is in use: %s", what,
                       path, strerror(connect_errno));
    if (unlink(path) < 0)
        return err_errno(-errno, "%s %s: cannot remove the stale socket", what, path);
    return 0;
}

/* bind() creates the file with 0777 less the umask: with the umask set to
 * the complement of 'mode' it never exists with more than 'mode' allows, so
 * nobody can connect in a window before a chmod. The umask is process-wide;
 * listening sockets are created while ember's other threads create no files.
 * The chmod after it covers bits the umask cannot grant (default ACLs). */
static int bind_with_mode(int fd, const struct sockaddr_un *addr, const char *path, mode_t mode)
{
    mode_t old = mode ? umask(~mode & 0777) : 0;
    int ret = bind(fd, (const struct sockaddr *)addr, sizeof(*addr)) < 0 ? -errno : 0;
    if (mode)
        umask(old);
    if (!ret && mode && chmod(path, mode) < 0)
        ret = -errno;
    return ret;
}

int usock_listen(const char *path, const char *what, int backlog, mode_t mode,
                 struct usock_listener *out)
{
    struct sockaddr_un addr;
    out->fd = -1;
    if (fill_addr(path, &addr))
        return err_set(-ENAMETOOLONG, "%s path '%s' is empty or longer than %zu bytes", what,
                       path, sizeof(addr.sun_path) - 1);
    int ret = clear_stale_socket(path, what, &addr);
    if (ret)
        return ret;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_errno(-errno, "socket failed");
    struct stat st;
    int b = bind_with_mode(fd, &addr, path, mode);
    if (b)
        ret = err_errno(b, "%s %s: bind failed", what, path);
    else if (listen(fd, backlog) < 0 || stat(path, &st) < 0)
        ret = err_errno(-errno, "%s %s: listen failed", what, path);
    if (ret) {
        close(fd);
        return ret;
    }
    *out = (struct usock_listener){fd, st.st_dev, st.st_ino};
    return 0;
}

void usock_close(struct usock_listener *l, const char *path)
{
    if (l->fd < 0)
        return;
    close(l->fd);
    l->fd = -1;
    struct stat st;
    if (path && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == l->dev &&
        st.st_ino == l->ino)
        unlink(path);
}

int usock_connect(const char *path)
{
    struct sockaddr_un addr;
    if (fill_addr(path, &addr))
        return -ENAMETOOLONG;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        /* A Unix connect completes at once or fails; EAGAIN means a full
         * backlog, EINPROGRESS does not happen for AF_UNIX. */
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}
