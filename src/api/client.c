#include "api/client.h"

#include <http_parser.h>
#include <json-c/json.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/util.h"

/* A snapshot of a large guest writes gigabytes: be patient, not endless. */
#define CLIENT_TIMEOUT_MS (10 * 60 * 1000)

struct response {
    struct api_reply *reply;
    size_t len;
    bool complete;
};

static int on_body(http_parser *p, const char *at, size_t len)
{
    struct response *r = p->data;
    size_t room = sizeof(r->reply->body) - 1 - r->len;
    size_t n = MIN(len, room);
    memcpy(r->reply->body + r->len, at, n);
    r->len += n;
    r->reply->body[r->len] = '\0';
    return 0;
}

static int on_complete(http_parser *p)
{
    ((struct response *)p->data)->complete = true;
    return 0;
}

static int connect_to(const char *sock)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof(addr.sun_path))
        return err_set(-ENAMETOOLONG, "API socket path %s is too long", sock);
    strcpy(addr.sun_path, sock);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return err_errno(-errno, "socket");
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int ret = err_errno(-errno, "cannot connect to the API socket %s", sock);
        close(fd);
        return ret;
    }
    return fd;
}

static int read_response(int fd, struct api_reply *reply)
{
    http_parser_settings settings;
    http_parser_settings_init(&settings);
    settings.on_body = on_body;
    settings.on_message_complete = on_complete;
    struct response r = {.reply = reply};
    http_parser parser;
    http_parser_init(&parser, HTTP_RESPONSE);
    parser.data = &r;
    char buf[4096];
    while (!r.complete) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        int ready = poll(&pfd, 1, CLIENT_TIMEOUT_MS);
        if (ready < 0 && errno == EINTR)
            continue;
        if (ready <= 0)
            return ready ? -errno : -ETIMEDOUT;
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        size_t used = http_parser_execute(&parser, &settings, buf, (size_t)n);
        if (parser.http_errno != HPE_OK || used != (size_t)n)
            return -EPROTO;
        if (n == 0 && !r.complete)
            return -ECONNRESET;
    }
    reply->status = (int)parser.status_code;
    return 0;
}

/* (SIGPIPE is ignored process-wide: a closed socket is an error here.) */
int api_client_call(const char *sock, const char *method, const char *path,
                    const char *body, struct api_reply *reply)
{
    memset(reply, 0, sizeof(*reply));
    int fd = connect_to(sock);
    if (fd < 0)
        return fd;
    size_t body_len = body ? strlen(body) : 0;
    char head[512];
    int head_len = snprintf(head, sizeof(head),
                            "%s %s HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n"
                            "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                            "Connection: close\r\n\r\n", method, path, body_len);
    int ret = head_len < 0 || (size_t)head_len >= sizeof(head) ? -EINVAL : 0;
    if (!ret)
        ret = write_all(fd, head, (size_t)head_len);
    if (!ret && body_len)
        ret = write_all(fd, body, body_len);
    if (!ret)
        ret = read_response(fd, reply);
    close(fd);
    return ret ? err_errno(ret, "%s %s on the API socket %s", method, path, sock) : 0;
}

/* The fault message of an error reply, or its raw body. */
static const char *fault_of(const struct api_reply *reply, char *out, size_t max)
{
    struct json_object *o = json_tokener_parse(reply->body), *msg;
    if (o && json_object_object_get_ex(o, "fault_message", &msg))
        snprintf(out, max, "%s", json_object_get_string(msg));
    else
        snprintf(out, max, "%s", reply->body);
    json_object_put(o);
    return out;
}

/* A request that must answer 204. */
static int call_ok(const char *sock, const char *method, const char *path, const char *body)
{
    struct api_reply reply;
    int ret = api_client_call(sock, method, path, body, &reply);
    if (ret)
        return ret;
    if (reply.status == 204)
        return 0;
    char fault[1024];
    return err_set(-EIO, "%s %s: %d %s", method, path, reply.status,
                   fault_of(&reply, fault, sizeof(fault)));
}

static int vm_state(const char *sock, char *state, size_t max)
{
    struct api_reply reply;
    int ret = api_client_call(sock, "GET", "/", NULL, &reply);
    if (ret)
        return ret;
    struct json_object *o = json_tokener_parse(reply.body), *s;
    ret = reply.status == 200 && o && json_object_object_get_ex(o, "state", &s) &&
                  json_object_is_type(s, json_type_string)
              ? 0
              : err_set(-EPROTO, "GET / on %s: unexpected answer %d %s", sock, reply.status,
                        reply.body);
    if (!ret)
        snprintf(state, max, "%s", json_object_get_string(s));
    json_object_put(o);
    return ret;
}

int api_client_snapshot(const struct snapshot_command *cmd)
{
    char state[32];
    int ret = vm_state(cmd->sock, state, sizeof(state));
    if (ret)
        return ret;
    bool running = !strcmp(state, "Running");
    if (!running && strcmp(state, "Paused"))
        return err_set(-EINVAL, "the VM on %s is %s: nothing to snapshot", cmd->sock, state);
    struct json_object *body = json_object_new_object();
    json_object_object_add(body, "snapshot_type",
                           json_object_new_string(cmd->diff ? "Diff" : "Full"));
    json_object_object_add(body, "snapshot_path", json_object_new_string(cmd->state_path));
    json_object_object_add(body, "mem_file_path", json_object_new_string(cmd->mem_path));
    if (running)
        ret = call_ok(cmd->sock, "PATCH", "/vm", "{\"state\": \"Paused\"}");
    if (!ret)
        ret = call_ok(cmd->sock, "PUT", "/snapshot/create",
                      json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN));
    json_object_put(body);
    if (running && !cmd->keep_paused) {
        /* Resume even after a failed snapshot: the VM was running before. */
        char first[1024];
        snprintf(first, sizeof(first), "%s", ret ? err_msg() : "");
        int resumed = call_ok(cmd->sock, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
        if (ret)
            return err_set(ret, "%s", first);
        ret = resumed;
    }
    return ret;
}
