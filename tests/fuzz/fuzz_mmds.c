/* libFuzzer target: a hostile guest against the metadata service. The
 * input is what a guest sends on one connection (cut into writes where the
 * first byte says), parsed by the HTTP server and answered from a store
 * with objects, arrays, strings and numbers, as V1 or V2; the same bytes
 * are also taken as a frame from the guest's NIC (header first) for the
 * classifier and checksum completion that divert frames to the service. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http_server.h"
#include "api/mmds_http.h"
#include "api/mmds_store.h"
#include "util/evloop.h"
#include "virtio/backends/net_backend.h"

static struct evloop loop;
static struct http_server *srv;
static struct mmds_store store;
static uint8_t frame[NET_MAX_FRAME];

static void setup(void)
{
    if (srv)
        return;
    if (evloop_init(&loop) ||
        http_server_create(NULL, 0, MMDS_MAX_REQUEST_BODY, &loop, mmds_http_handle, &store,
                           &srv))
        abort();
    mmds_store_init(&store, MMDS_DEFAULT_SIZE_LIMIT);
    static const char data[] = "{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", \"a/b\": "
                               "\"x\"}, \"list\": [1, \"two\", {\"three\": null}]}, \"n\": 5}";
    struct json_object *v = json_tokener_parse(data);
    if (!v || mmds_store_put(&store, v))
        abort();
    json_object_put(v);
}

static void frames(const uint8_t *data, size_t size)
{
    uint32_t ip = 0xfea9fea9; /* 169.254.169.254 in network order */
    size_t len = size < sizeof(frame) ? size : sizeof(frame);
    memcpy(frame, data, len);
    if (net_mmds_wants(ip, frame, len) && len >= NET_HDR_SIZE) {
        uint8_t arp[NET_MMDS_ARP_FRAME];
        (void)net_mmds_gratuitous_arp(frame, len, arp);
        (void)net_mmds_complete_frame(frame, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    setup();
    if (size < 1)
        return 0;
    frames(data, size);
    store.version = data[0] & 1 ? MMDS_V2 : MMDS_V1;
    store.imds_compat = data[0] & 2;
    size_t chunk = 1 + (data[0] >> 2) * 8; /* bytes per write */
    data++, size--;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv))
        abort();
    http_server_adopt(srv, sv[0]);
    size_t off = 0;
    char sink[4096];
    for (int round = 0; round < 64; round++) {
        if (off < size) {
            size_t n = size - off < chunk ? size - off : chunk;
            ssize_t w = send(sv[1], data + off, n, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            if (off == size)
                shutdown(sv[1], SHUT_WR);
        }
        evloop_run_once(&loop, 0);
        ssize_t r;
        while ((r = read(sv[1], sink, sizeof(sink))) > 0)
            ;
        if (r == 0 && off == size)
            break;
    }
    close(sv[1]);
    evloop_run_once(&loop, 0); /* the server sees the hang-up and frees the client */
    return 0;
}
