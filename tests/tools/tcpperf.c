/* tcpperf: one TCP stream, measured, for ember's tests and benchmark.
 *
 *   tcpperf recv PORT [OUTFILE]        accept one connection, keep the data
 *                                      (or discard it), until the sender ends
 *   tcpperf send HOST PORT FILE|-MIB   send a file, or MIB mebibytes of
 *                                      pseudo-random data, then wait for the
 *                                      receiver to close
 * Each prints "tcpperf: <sent|received> N bytes in S s, X MB/s" and exits 0
 * only if the stream completed. The sender retries connecting for 20 s. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256 * 1024)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int do_recv(int port, const char *out)
{
    int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(ls, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(ls, 1) < 0) {
        perror("tcpperf: listen");
        return 1;
    }
    printf("tcpperf: listening on %d\n", port);
    fflush(stdout);
    int s = accept(ls, NULL, NULL);
    if (s < 0) {
        perror("tcpperf: accept");
        return 1;
    }
    int fd = out ? open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644) : -1;
    static char buf[CHUNK];
    uint64_t total = 0;
    double start = now();
    for (;;) {
        ssize_t n = read(s, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            perror("tcpperf: read");
            return 1;
        }
        if (n == 0)
            break;
        if (fd >= 0 && write_all(fd, buf, (size_t)n) < 0) {
            perror("tcpperf: write");
            return 1;
        }
        total += (uint64_t)n;
    }
    double secs = now() - start;
    close(s); /* tells the sender everything arrived */
    printf("tcpperf: received %llu bytes in %.3f s, %.1f MB/s\n", (unsigned long long)total,
           secs, (double)total / 1e6 / secs);
    return fd >= 0 && close(fd) < 0;
}

static int connect_retry(const char *host, const char *port)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port))};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        fprintf(stderr, "tcpperf: %s is not an IPv4 address\n", host);
        return -1;
    }
    double deadline = now() + 20;
    for (;;) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0)
            return s;
        close(s);
        if (now() > deadline) {
            perror("tcpperf: connect");
            return -1;
        }
        usleep(200000);
    }
}

static int do_send(const char *host, const char *port, const char *what)
{
    int fd = -1;
    uint64_t limit = UINT64_MAX;
    if (what[0] == '-')
        limit = (uint64_t)atoll(what + 1) << 20;
    else if ((fd = open(what, O_RDONLY)) < 0) {
        perror(what);
        return 1;
    }
    int s = connect_retry(host, port);
    if (s < 0)
        return 1;
    static char buf[CHUNK];
    uint32_t x = 2463534242u;
    for (size_t i = 0; i < sizeof(buf); i += 4) { /* xorshift: incompressible */
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        memcpy(buf + i, &x, 4);
    }
    uint64_t total = 0;
    double start = now();
    while (total < limit) {
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf))
                            : (ssize_t)(limit - total < sizeof(buf) ? limit - total : sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (write_all(s, buf, (size_t)n) < 0) {
            perror("tcpperf: send");
            return 1;
        }
        total += (uint64_t)n;
    }
    shutdown(s, SHUT_WR);
    char c;
    while (read(s, &c, 1) > 0) { /* the receiver closes once it has all */
    }
    double secs = now() - start;
    printf("tcpperf: sent %llu bytes in %.3f s, %.1f MB/s\n", (unsigned long long)total, secs,
           (double)total / 1e6 / secs);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && !strcmp(argv[1], "recv"))
        return do_recv(atoi(argv[2]), argc > 3 ? argv[3] : NULL);
    if (argc == 5 && !strcmp(argv[1], "send"))
        return do_send(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: tcpperf recv PORT [OUTFILE] | tcpperf send HOST PORT FILE|-MIB\n");
    return 2;
}
