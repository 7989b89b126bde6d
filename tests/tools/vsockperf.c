/* vsockperf: vsock streams for ember's tests and benchmark, on either side.
 *
 * Addresses:
 *   vsock:CID:PORT     AF_VSOCK (listen: CID is ignored, any CID)
 *   unix:PATH          AF_UNIX stream at PATH
 *   hybrid:PATH:PORT   Firecracker's host side: connect to PATH, send
 *                      "CONNECT PORT\n", expect "OK <n>\n" (connect only)
 *   tcp:IPV4:PORT      TCP, for comparison (listen: any address)
 *
 *   vsockperf recv ADDR [--close-after BYTES]
 *       accept one connection, read to its end (or close after BYTES)
 *   vsockperf send ADDR MIB [--seed N]
 *       connect, send MIB mebibytes of pseudo-random data, shut down writing,
 *       wait for the peer to close
 *   vsockperf echo ADDR CONNS
 *       accept CONNS connections, all served at once, echoing each to its end
 *   vsockperf multi ADDR CONNS KIB
 *       open CONNS connections before sending anything, then send KIB KiB of
 *       different data on each and check what comes back (against 'echo')
 *   vsockperf idle PATH [TEXT]
 *       connect to a Unix socket, send TEXT (if given), report when the peer
 *       closes the connection
 *   vsockperf hold ADDR
 *       connect, say "held", and report how the connection ends
 *   vsockperf lat ADDR COUNT
 *       connect, exchange one byte, close, COUNT times (against 'echo')
 *
 * Data is a deterministic stream (xorshift, --seed); each side prints the
 * checksum (FNV-1a over 64-bit words) of what it sent or received. Exit
 * status 0 only on success. */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

#define CHUNK (256 * 1024)
#define RETRY_S 20.0

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "vsockperf: %s: %s\n", what, strerror(errno));
    exit(2);
}

struct addr {
    int family; /* AF_VSOCK, AF_UNIX or AF_INET */
    struct in_addr ip;
    bool hybrid;
    unsigned cid, port;
    char path[108];
};

static int parse_addr(const char *s, struct addr *a)
{
    memset(a, 0, sizeof(*a));
    if (!strncmp(s, "vsock:", 6)) {
        a->family = AF_VSOCK;
        return sscanf(s + 6, "%u:%u", &a->cid, &a->port) == 2 ? 0 : -1;
    }
    if (!strncmp(s, "unix:", 5)) {
        a->family = AF_UNIX;
        snprintf(a->path, sizeof(a->path), "%s", s + 5);
        return a->path[0] ? 0 : -1;
    }
    if (!strncmp(s, "tcp:", 4)) {
        char ip[32];
        a->family = AF_INET;
        return sscanf(s + 4, "%31[0-9.]:%u", ip, &a->port) == 2 && inet_aton(ip, &a->ip) ? 0
                                                                                          : -1;
    }
    if (!strncmp(s, "hybrid:", 7)) {
        const char *colon = strrchr(s + 7, ':');
        if (!colon || colon == s + 7)
            return -1;
        a->family = AF_UNIX;
        a->hybrid = true;
        snprintf(a->path, sizeof(a->path), "%.*s", (int)(colon - (s + 7)), s + 7);
        return sscanf(colon + 1, "%u", &a->port) == 1 ? 0 : -1;
    }
    return -1;
}

static socklen_t sockaddr_of(const struct addr *a, struct sockaddr_storage *ss, bool listen)
{
    memset(ss, 0, sizeof(*ss));
    if (a->family == AF_VSOCK) {
        struct sockaddr_vm *v = (struct sockaddr_vm *)ss;
        v->svm_family = AF_VSOCK;
        v->svm_cid = listen ? VMADDR_CID_ANY : a->cid;
        v->svm_port = a->port;
        return sizeof(*v);
    }
    if (a->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)a->port);
        in->sin_addr.s_addr = listen ? htonl(INADDR_ANY) : a->ip.s_addr;
        return sizeof(*in);
    }
    struct sockaddr_un *u = (struct sockaddr_un *)ss;
    u->sun_family = AF_UNIX;
    snprintf(u->sun_path, sizeof(u->sun_path), "%s", a->path);
    return sizeof(*u);
}

static int listen_on(const struct addr *a, int backlog)
{
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(a, &ss, true);
    if (a->family == AF_UNIX)
        unlink(a->path);
    int fd = socket(a->family, SOCK_STREAM, 0), one = 1;
    if (a->family == AF_INET)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0)
        die("listen");
    printf("vsockperf: listening\n");
    fflush(stdout);
    return fd;
}

/* Firecracker's handshake: 1 done, 0 refused (the socket closed: no
 * listener in the guest yet), -1 an error. */
static int hybrid_handshake(int fd, unsigned port)
{
    char line[64];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (write(fd, line, (size_t)n) != n)
        return -1;
    size_t got = 0;
    while (got < sizeof(line) - 1) {
        ssize_t r = read(fd, line + got, 1);
        if (r == 0 || (r < 0 && errno == ECONNRESET))
            return 0;
        if (r < 0)
            return -1;
        if (line[got++] == '\n')
            break;
    }
    line[got] = 0;
    unsigned local;
    if (sscanf(line, "OK %u\n", &local) != 1) {
        fprintf(stderr, "vsockperf: unexpected answer '%s'\n", line);
        return -1;
    }
    return 1;
}

/* Connect, retrying for RETRY_S while nobody listens yet. */
static int connect_to(const struct addr *a)
{
    double give_up = now() + RETRY_S;
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t len = sockaddr_of(a, &ss, false);
        int fd = socket(a->family, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        int ok = connect(fd, (struct sockaddr *)&ss, len) == 0 ? 1 : -1;
        if (ok == 1 && a->hybrid)
            ok = hybrid_handshake(fd, a->port);
        if (ok == 1) {
            int one = 1;
            if (a->family == AF_INET) /* one byte at a time in 'lat': no Nagle delay */
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        int e = errno;
        close(fd);
        bool retry = ok == 0 || e == ECONNREFUSED || e == ECONNRESET || e == ENOENT ||
                     e == ETIMEDOUT || e == EAGAIN;
        if (!retry || now() > give_up) {
            errno = ok == 0 ? ECONNREFUSED : e;
            die("connect");
        }
        usleep(100000);
    }
}

/* FNV-1a over 64-bit words (bytes for a tail): a checksum that costs far
 * less than the transfer it checks, so throughput figures measure the
 * transfer. Chunk boundaries on the reading side fall anywhere: a partial
 * word is kept until it is complete. */
struct sum {
    uint64_t h;
    uint8_t part[8];
    size_t npart;
};
#define SUM_INIT {0xcbf29ce484222325ull, {0}, 0}

static void sum_word(struct sum *s, const uint8_t *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    s->h = (s->h ^ w) * 0x100000001b3ull;
}

static void sum_add(struct sum *s, const uint8_t *p, size_t n)
{
    while (n && s->npart) {
        s->part[s->npart++] = *p++;
        n--;
        if (s->npart == 8) {
            sum_word(s, s->part);
            s->npart = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8)
        sum_word(s, p);
    memcpy(s->part, p, n);
    s->npart = n;
}

static uint64_t sum_end(struct sum *s)
{
    for (size_t i = 0; i < s->npart; i++)
        s->h = (s->h ^ s->part[i]) * 0x100000001b3ull;
    s->npart = 0;
    return s->h;
}

static void fill(uint64_t *state, uint8_t *buf, size_t n)
{
    uint64_t x = *state;
    for (size_t i = 0; i + 8 <= n; i += 8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        memcpy(buf + i, &x, 8);
    }
    *state = x;
}

static int write_all(int fd, const uint8_t *p, size_t n, uint64_t *done)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
        *done += (uint64_t)w;
    }
    return 0;
}

static int do_recv(const struct addr *a, long long close_after)
{
    int ls = listen_on(a, 4);
    int s = accept(ls, NULL, NULL);
    if (s < 0)
        die("accept");
    static uint8_t buf[CHUNK];
    uint64_t total = 0;
    struct sum sum = SUM_INIT;
    double start = now();
    for (;;) {
        size_t want = sizeof(buf);
        if (close_after >= 0 && (uint64_t)close_after - total < want)
            want = (size_t)((uint64_t)close_after - total);
        if (close_after >= 0 && want == 0) {
            printf("vsockperf: closing after %llu bytes\n", (unsigned long long)total);
            close(s);
            return 0;
        }
        ssize_t n = read(s, buf, want);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            printf("vsockperf: receive failed after %llu bytes: %s\n",
                   (unsigned long long)total, strerror(errno));
            return 3;
        }
        if (n == 0)
            break;
        sum_add(&sum, buf, (size_t)n);
        total += (uint64_t)n;
    }
    double secs = now() - start;
    printf("vsockperf: received %llu bytes in %.3f s, %.1f MB/s, sum %016llx\n",
           (unsigned long long)total, secs, secs > 0 ? (double)total / secs / 1e6 : 0.0,
           (unsigned long long)sum_end(&sum));
    close(s);
    return 0;
}

static int do_send(const struct addr *a, unsigned mib, uint64_t seed)
{
    int s = connect_to(a);
    static uint8_t buf[CHUNK];
    uint64_t total = 0, want = (uint64_t)mib << 20, state = seed | 1;
    struct sum sum = SUM_INIT;
    printf("vsockperf: connected\n");
    fflush(stdout);
    double start = now();
    while (total < want) {
        size_t n = sizeof(buf);
        if (want - total < n)
            n = (size_t)(want - total);
        fill(&state, buf, n);
        sum_add(&sum, buf, n);
        if (write_all(s, buf, n, &total) < 0) {
            printf("vsockperf: send failed after %llu bytes: %s\n", (unsigned long long)total,
                   strerror(errno));
            return 3;
        }
    }
    shutdown(s, SHUT_WR);
    char c;
    while (read(s, &c, 1) > 0) /* until the receiver has it all and closes */
        ;
    double secs = now() - start;
    printf("vsockperf: sent %llu bytes in %.3f s, %.1f MB/s, sum %016llx\n",
           (unsigned long long)total, secs, secs > 0 ? (double)total / secs / 1e6 : 0.0,
           (unsigned long long)sum_end(&sum));
    close(s);
    return 0;
}

#define MAX_CONNS 1024

static int do_echo(const struct addr *a, int conns)
{
    int ls = listen_on(a, conns);
    struct pollfd p[MAX_CONNS + 1];
    int open_conns = 0, accepted = 0, finished = 0;
    uint64_t bytes = 0;
    p[0] = (struct pollfd){.fd = ls, .events = POLLIN};
    static uint8_t buf[65536];
    while (finished < conns) {
        if (poll(p, (nfds_t)(open_conns + 1), -1) < 0 && errno != EINTR)
            die("poll");
        if ((p[0].revents & POLLIN) && accepted < conns) {
            int s = accept(ls, NULL, NULL);
            if (s >= 0) {
                p[++open_conns] = (struct pollfd){.fd = s, .events = POLLIN};
                accepted++;
            }
        }
        for (int i = 1; i <= open_conns; i++) {
            if (!p[i].revents)
                continue;
            ssize_t n = read(p[i].fd, buf, sizeof(buf));
            uint64_t w = 0;
            if (n > 0 && write_all(p[i].fd, buf, (size_t)n, &w) == 0) {
                bytes += (uint64_t)n;
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 || n > 0)
                printf("vsockperf: echo connection failed: %s\n", strerror(errno));
            close(p[i].fd);
            p[i--] = p[open_conns--];
            finished++;
        }
    }
    printf("vsockperf: echoed %d connections, %llu bytes\n", finished, (unsigned long long)bytes);
    return 0;
}

#define BLK 4096

/* One connection of 'multi': its stream is generated in BLK-byte blocks
 * on both sides of the comparison. */
struct mconn {
    int fd;
    uint64_t sent, got, sstate, rstate;
    size_t soff, roff; /* offsets into the current blocks (BLK: generate the next) */
    uint8_t sblk[BLK], rblk[BLK];
};

static int do_multi(const struct addr *a, int conns, unsigned kib)
{
    struct mconn *c = calloc((size_t)conns, sizeof(*c));
    if (!c)
        die("calloc");
    for (int i = 0; i < conns; i++) {
        c[i].fd = connect_to(a);
        c[i].sstate = c[i].rstate = 0x9e3779b97f4a7c15ull * (uint64_t)(i + 1) | 1;
        c[i].soff = c[i].roff = BLK;
    }
    printf("vsockperf: %d connections open\n", conns);
    fflush(stdout);
    uint64_t want = (uint64_t)kib << 10;
    static uint8_t buf[16384];
    static struct pollfd p[MAX_CONNS];
    int done = 0, bad = 0;
    double start = now();
    while (done < conns) {
        for (int i = 0; i < conns; i++)
            p[i] = (struct pollfd){.fd = c[i].fd,
                                   .events = (short)(POLLIN | (c[i].sent < want ? POLLOUT : 0))};
        if (poll(p, (nfds_t)conns, 30000) <= 0) {
            printf("vsockperf: stalled with %d of %d connections done\n", done, conns);
            return 3;
        }
        for (int i = 0; i < conns; i++) {
            struct mconn *m = &c[i];
            if (m->fd < 0)
                continue;
            if ((p[i].revents & POLLOUT) && m->sent < want) {
                if (m->soff == BLK) {
                    fill(&m->sstate, m->sblk, BLK);
                    m->soff = 0;
                }
                size_t n = BLK - m->soff;
                if (want - m->sent < n)
                    n = (size_t)(want - m->sent);
                ssize_t w = send(m->fd, m->sblk + m->soff, n, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && errno != EAGAIN) {
                    printf("vsockperf: connection %d: send: %s\n", i, strerror(errno));
                    return 3;
                }
                if (w > 0) {
                    m->soff += (size_t)w;
                    m->sent += (uint64_t)w;
                    if (m->sent == want)
                        shutdown(m->fd, SHUT_WR);
                }
            }
            if (p[i].revents & (POLLIN | POLLHUP | POLLERR)) {
                ssize_t n = recv(m->fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n < 0 && errno == EAGAIN)
                    continue;
                if (n > 0) {
                    for (size_t k = 0; k < (size_t)n;) {
                        if (m->roff == BLK) {
                            fill(&m->rstate, m->rblk, BLK);
                            m->roff = 0;
                        }
                        size_t take = BLK - m->roff;
                        if (take > (size_t)n - k)
                            take = (size_t)n - k;
                        if (memcmp(buf + k, m->rblk + m->roff, take) && !bad++)
                            printf("vsockperf: connection %d: data differs at %llu\n", i,
                                   (unsigned long long)m->got);
                        m->roff += take;
                        m->got += take;
                        k += take;
                    }
                    continue;
                }
                if (m->got != want) {
                    printf("vsockperf: connection %d ended after %llu of %llu bytes%s%s\n", i,
                           (unsigned long long)m->got, (unsigned long long)want,
                           n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
                    bad++;
                }
                close(m->fd);
                m->fd = -1;
                done++;
            }
        }
    }
    double secs = now() - start;
    printf("vsockperf: %d connections, %u KiB each way on each, %s, %.2f s\n", conns, kib,
           bad ? "MISMATCH" : "all data matched", secs);
    free(c);
    return bad ? 3 : 0;
}

static int do_idle(const char *path, const char *text)
{
    struct addr a = {.family = AF_UNIX};
    snprintf(a.path, sizeof(a.path), "%s", path);
    struct sockaddr_storage ss;
    socklen_t len = sockaddr_of(&a, &ss, false);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0)
        die("connect");
    if (text && write(fd, text, strlen(text)) < 0)
        die("write");
    double start = now();
    struct timeval tv = {30, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    double secs = now() - start;
    if (n > 0)
        printf("vsockperf: idle: got %zd bytes after %.1f s\n", n, secs);
    else if (n == 0 || errno == ECONNRESET)
        printf("vsockperf: idle: closed by the peer after %.1f s\n", secs);
    else
        printf("vsockperf: idle: still open after %.1f s (%s)\n", secs, strerror(errno));
    return 0;
}

static int do_hold(const struct addr *a)
{
    int s = connect_to(a);
    printf("vsockperf: held\n");
    fflush(stdout);
    char c;
    ssize_t n = read(s, &c, 1);
    if (n < 0)
        printf("vsockperf: hold: error: %s\n", strerror(errno));
    else if (n == 0)
        printf("vsockperf: hold: end of stream\n");
    else
        printf("vsockperf: hold: data\n");
    return 0;
}

static int do_lat(const struct addr *a, int count)
{
    double total = 0, best = 1e9, worst = 0;
    for (int i = 0; i < count; i++) {
        double t0 = now();
        int s = connect_to(a);
        double t = now() - t0;
        char c = 'x';
        if (write(s, &c, 1) != 1 || read(s, &c, 1) != 1)
            die("exchange");
        close(s);
        total += t;
        best = t < best ? t : best;
        worst = t > worst ? t : worst;
    }
    printf("vsockperf: %d connects, mean %.1f us, min %.1f us, max %.1f us\n", count,
           total / count * 1e6, best * 1e6, worst * 1e6);
    return 0;
}

static void usage(void)
{
    fputs("usage: vsockperf recv ADDR [--close-after BYTES] | send ADDR MIB [--seed N] |\n"
          "       echo ADDR CONNS | multi ADDR CONNS KIB | idle PATH [TEXT] | hold ADDR |\n"
          "       lat ADDR COUNT\n"
          "(ADDR: vsock:CID:PORT, unix:PATH, hybrid:PATH:PORT, tcp:IPV4:PORT)\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 3)
        usage();
    const char *cmd = argv[1];
    if (!strcmp(cmd, "idle"))
        return do_idle(argv[2], argc > 3 ? argv[3] : NULL);
    struct addr a;
    if (parse_addr(argv[2], &a))
        usage();
    if (!strcmp(cmd, "recv")) {
        long long close_after = -1;
        if (argc == 5 && !strcmp(argv[3], "--close-after"))
            close_after = atoll(argv[4]);
        return do_recv(&a, close_after);
    }
    if (!strcmp(cmd, "send") && argc >= 4) {
        uint64_t seed = 1;
        if (argc == 6 && !strcmp(argv[4], "--seed"))
            seed = strtoull(argv[5], NULL, 0);
        return do_send(&a, (unsigned)atoi(argv[3]), seed);
    }
    if (!strcmp(cmd, "echo") && argc == 4)
        return do_echo(&a, atoi(argv[3]));
    if (!strcmp(cmd, "multi") && argc == 5) {
        int n = atoi(argv[3]);
        if (n < 1 || n > MAX_CONNS)
            usage();
        return do_multi(&a, n, (unsigned)atoi(argv[4]));
    }
    if (!strcmp(cmd, "hold"))
        return do_hold(&a);
    if (!strcmp(cmd, "lat") && argc == 4)
        return do_lat(&a, atoi(argv[3]));
    usage();
    return 2;
}
