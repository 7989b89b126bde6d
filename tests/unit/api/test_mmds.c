/* The metadata service without a guest: the store (PUT, PATCH as RFC
 * 7386's merge patch, its size limit), paths rendered as IMDS text or
 * JSON, V2 session tokens and their lifetimes, the guest-facing handler's
 * answers, and malformed or oversized guest HTTP through the real server
 * (a socketpair adopted as a client). */
#include "unit.h"

#include <json-c/json.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http_server.h"
#include "api/mmds_http.h"
#include "api/mmds_store.h"
#include "util/evloop.h"

static struct json_object *js(const char *text)
{
    enum json_tokener_error e;
    struct json_object *o = json_tokener_parse_verbose(text, &e);
    assert_int_equal(e, json_tokener_success);
    return o;
}

static void assert_json(struct json_object *got, const char *want_text)
{
    struct json_object *want = js(want_text);
    if (!json_object_equal(got, want))
        fail_msg("got %s, want %s", json_object_to_json_string(got), want_text);
    json_object_put(want);
}

static void test_put_get_limit(void **state)
{
    (void)state;
    struct mmds_store s;
    mmds_store_init(&s, 20);
    struct json_object *v = mmds_store_get(&s);
    assert_json(v, "{}");
    json_object_put(v);
    struct json_object *p = js("{\"a\": 1}");
    assert_int_equal(mmds_store_patch(&s, p), -ENOENT); /* before any PUT */
    json_object_put(p);
    p = js("{\"b\": \"123456\", \"a\": 1}"); /* {"a":1,"b":"123456"}: 20 bytes */
    assert_int_equal(mmds_store_put(&s, p), 0);
    json_object_put(p);
    p = js("{\"b\": \"1234567\"}");
    assert_int_equal(mmds_store_patch(&s, p), -EFBIG);
    assert_int_equal(mmds_store_put(&s, p), 0); /* a smaller whole store fits */
    json_object_put(p);
    p = js("{\"a\": \"12345678901234567890\"}");
    assert_int_equal(mmds_store_put(&s, p), -EFBIG);
    json_object_put(p);
    v = mmds_store_get(&s);
    assert_json(v, "{\"b\": \"1234567\"}"); /* unchanged by the refusals */
    /* Keys come out sorted, as Firecracker's (serde's) maps. */
    json_object_put(v);
    mmds_store_free(&s);
    mmds_store_init(&s, 1000);
    p = js("{\"z\": 1, \"m\": {\"y\": 1, \"b\": 2}, \"a\": 0}");
    assert_int_equal(mmds_store_put(&s, p), 0);
    json_object_put(p);
    v = mmds_store_get(&s);
    assert_string_equal(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN),
                        "{\"a\":0,\"m\":{\"b\":2,\"y\":1},\"z\":1}");
    json_object_put(v);
    mmds_store_free(&s);
}

/* RFC 7386, Appendix A: every example. */
static void test_merge_patch_rfc7386(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"b\":\"c\"}", "{\"a\":\"b\",\"b\":\"c\"}"},
        {"{\"a\":\"b\"}", "{\"a\":null}", "{}"},
        {"{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}", "{\"b\":\"c\"}"},
        {"{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}"},
        {"{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}"},
        {"{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}", "{\"a\":{\"b\":\"d\"}}"},
        {"{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}"},
        {"[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]"},
        {"{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]"},
        {"{\"a\":\"foo\"}", "null", "null"},
        {"{\"a\":\"foo\"}", "\"bar\"", "\"bar\""},
        {"{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}"},
        {"[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}"},
        {"{}", "{\"a\":{\"bb\":{\"ccc\":null}}}", "{\"a\":{\"bb\":{}}}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mmds_store s;
        mmds_store_init(&s, MMDS_DEFAULT_SIZE_LIMIT);
        struct json_object *target = js(cases[i][0]), *patch = js(cases[i][1]);
        assert_int_equal(mmds_store_put(&s, target), 0);
        assert_int_equal(mmds_store_patch(&s, patch), 0);
        assert_json(s.data, cases[i][2]);
        json_object_put(target);
        json_object_put(patch);
        mmds_store_free(&s);
    }
}

static void expect_render(struct mmds_store *s, const char *path, bool json, int ret,
                          const char *want)
{
    char *out = NULL;
    assert_int_equal(mmds_store_render(s, path, json, &out), ret);
    if (want)
        assert_string_equal(out, want);
    free(out);
}

static void test_render_paths(void **state)
{
    (void)state;
    struct mmds_store s;
    mmds_store_init(&s, MMDS_DEFAULT_SIZE_LIMIT);
    expect_render(&s, "/", false, -ENOTSUP, NULL); /* null before a PUT */
    expect_render(&s, "/latest", false, -ENOENT, NULL);
    struct json_object *v = js("{\"latest\": {\"meta-data\": {\"ami-id\": \"ami-1\", "
                               "\"tags\": {\"k\": \"v\"}}, \"user-data\": \"hi\"}, "
                               "\"n\": 5, \"arr\": [\"x\", {\"y\": \"z\"}], \"a/b\": \"slash\", "
                               "\"t~\": \"tilde\", \"nul\": null}");
    assert_int_equal(mmds_store_put(&s, v), 0);
    json_object_put(v);
    expect_render(&s, "/", false, 0, "a/b\narr\nlatest/\nn\nnul\nt~");
    expect_render(&s, "/latest/", false, 0, "meta-data/\nuser-data");
    expect_render(&s, "//latest//meta-data", false, 0, "ami-id\ntags/");
    expect_render(&s, "/latest/meta-data/ami-id", false, 0, "ami-1");
    expect_render(&s, "/latest/meta-data/ami-id/", false, 0, "ami-1");
    expect_render(&s, "/latest/meta-data/tags", true, 0, "{\"k\":\"v\"}");
    expect_render(&s, "/n", true, 0, "5");
    expect_render(&s, "/n", false, -ENOTSUP, NULL);
    expect_render(&s, "/arr", false, -ENOTSUP, NULL);
    expect_render(&s, "/arr/1/y", false, 0, "z");
    expect_render(&s, "/arr/01", false, -ENOENT, NULL);
    expect_render(&s, "/arr/2", false, -ENOENT, NULL);
    expect_render(&s, "/a~1b", false, 0, "slash");
    expect_render(&s, "/t~0", false, 0, "tilde");
    expect_render(&s, "/t~2", false, -ENOENT, NULL);
    expect_render(&s, "/nul", true, 0, "null");
    expect_render(&s, "/nul", false, -ENOTSUP, NULL);
    expect_render(&s, "/nul/x", false, -ENOENT, NULL);
    expect_render(&s, "/missing", false, -ENOENT, NULL);
    expect_render(&s, "/latest/user-data/more", false, -ENOENT, NULL);
    s.imds_compat = true; /* IMDS text whatever was asked */
    expect_render(&s, "/latest/meta-data/tags", true, 0, "k");
    mmds_store_free(&s);
}

static void test_token_lifetimes(void **state)
{
    (void)state;
    static struct mmds_store s;
    mmds_store_init(&s, MMDS_DEFAULT_SIZE_LIMIT);
    char t[MMDS_TOKEN_LEN + 1], t2[MMDS_TOKEN_LEN + 1];
    /* No table until the first token: nothing valid, clearing is harmless. */
    char zeros[MMDS_TOKEN_LEN + 1];
    memset(zeros, '0', MMDS_TOKEN_LEN);
    zeros[MMDS_TOKEN_LEN] = '\0';
    assert_false(mmds_token_valid(&s, zeros, 0));
    mmds_tokens_clear(&s);
    assert_int_equal(mmds_token_new(&s, 0, 1000, t), -EINVAL);
    assert_int_equal(mmds_token_new(&s, 21601, 1000, t), -EINVAL);
    assert_null(s.tokens); /* a refused TTL allocates nothing */
    assert_int_equal(mmds_token_new(&s, 1, 1000, t), 0);
    assert_non_null(s.tokens);
    assert_int_equal(strlen(t), MMDS_TOKEN_LEN);
    assert_true(mmds_token_valid(&s, t, 1000));
    assert_true(mmds_token_valid(&s, t, 1999));
    assert_false(mmds_token_valid(&s, t, 2000)); /* expired after its TTL */
    assert_int_equal(mmds_token_new(&s, 21600, 1000, t2), 0);
    assert_true(mmds_token_valid(&s, t2, 1000 + 21600ull * 1000 - 1));
    assert_false(mmds_token_valid(&s, t2, 1000 + 21600ull * 1000));
    assert_string_not_equal(t, t2);
    char bad[MMDS_TOKEN_LEN + 1];
    memcpy(bad, t2, sizeof(bad));
    bad[5] ^= 1;
    assert_false(mmds_token_valid(&s, bad, 1000));
    assert_false(mmds_token_valid(&s, "", 1000));
    char longer[200];
    memset(longer, 'a', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    memcpy(longer, t2, MMDS_TOKEN_LEN);
    assert_false(mmds_token_valid(&s, longer, 1000));
    /* A flood replaces the oldest live tokens, never grows. */
    for (unsigned i = 0; i < MMDS_MAX_TOKENS; i++)
        assert_int_equal(mmds_token_new(&s, 60, 1000, t), 0);
    assert_false(mmds_token_valid(&s, t2, 1000));
    assert_true(mmds_token_valid(&s, t, 1000));
    mmds_tokens_clear(&s);
    assert_false(mmds_token_valid(&s, t, 1000));
    mmds_store_free(&s);
    assert_null(s.tokens);
}

/* --- the handler -------------------------------------------------------- */

static struct http_response handle(struct mmds_store *s, const char *method, const char *path,
                                   const struct http_header *h, unsigned nh)
{
    struct http_request req = {.method = method, .path = path, .body = "", .headers = h,
                               .nr_headers = nh};
    struct http_response resp = {.status = 0};
    mmds_http_handle(s, &req, &resp);
    return resp;
}

static void expect_answer(struct http_response r, int status, const char *body)
{
    assert_int_equal(r.status, status);
    if (body)
        assert_string_equal(r.body, body);
    free(r.body);
}

static void test_handler(void **state)
{
    (void)state;
    static struct mmds_store s;
    mmds_store_init(&s, MMDS_DEFAULT_SIZE_LIMIT);
    struct json_object *v = js("{\"a\": {\"b\": \"c\"}}");
    assert_int_equal(mmds_store_put(&s, v), 0);
    json_object_put(v);
    const struct http_header json[] = {{"accept", "application/json"}};
    expect_answer(handle(&s, "GET", "/a", NULL, 0), 200, "b");
    struct http_response r = handle(&s, "GET", "/a", json, 1);
    assert_string_equal(r.content_type, "application/json");
    expect_answer(r, 200, "{\"b\":\"c\"}");
    expect_answer(handle(&s, "GET", "/x", NULL, 0), 404, "Resource not found: /x.");
    r = handle(&s, "POST", "/a", NULL, 0);
    assert_string_equal(r.extra_headers, "Allow: GET, PUT\r\n");
    expect_answer(r, 405, "Not allowed HTTP method.");
    expect_answer(handle(&s, "PUT", "/a", NULL, 0), 404, "Resource not found: /a.");
    const struct http_header fwd[] = {{"X-Forwarded-For", "1.2.3.4"},
                                      {"X-metadata-token-ttl-seconds", "5"}};
    expect_answer(handle(&s, "PUT", MMDS_TOKEN_PATH, fwd, 2), 400,
                  "Invalid header. Reason: Unsupported header name. Key: X-Forwarded-For");
    const struct http_header ttl[] = {{"x-aws-ec2-metadata-token-ttl-seconds", "5"}};
    r = handle(&s, "PUT", "//latest//api/token", ttl, 1);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.extra_headers, "X-aws-ec2-metadata-token-ttl-seconds: 5\r\n");
    char token[MMDS_TOKEN_LEN + 1];
    snprintf(token, sizeof(token), "%s", r.body);
    free(r.body);
    const struct http_header big[] = {{"X-metadata-token-ttl-seconds", "99999999999"}};
    expect_answer(handle(&s, "PUT", MMDS_TOKEN_PATH, big, 1), 400,
                  "Invalid header. Reason: Invalid value. Key:X-metadata-token-ttl-seconds; "
                  "Value:99999999999");
    /* V2: a token is required and checked; V1 takes any. */
    const struct http_header bad[] = {{"X-metadata-token", "nope"}};
    expect_answer(handle(&s, "GET", "/a/b", bad, 1), 200, "c");
    s.version = MMDS_V2;
    expect_answer(handle(&s, "GET", "/a/b", NULL, 0), 401, NULL);
    expect_answer(handle(&s, "GET", "/a/b", bad, 1), 401, "MMDS token not valid.");
    const struct http_header good[] = {{"X-aws-ec2-metadata-token", token}};
    expect_answer(handle(&s, "GET", "/a/b", good, 1), 200, "c");
    expect_answer(handle(&s, "GET", "", NULL, 0), 400, "Invalid URI.");
    mmds_store_free(&s);
}

/* --- hostile HTTP through the server ------------------------------------- */

static struct mmds_store server_store;

/* Send 'raw' as a guest connection and return what the server answers
 * (malloc'ed) once it is done with it. */
static char *exchange(const char *raw, size_t len)
{
    struct evloop loop;
    assert_int_equal(evloop_init(&loop), 0);
    struct http_server *srv;
    assert_int_equal(http_server_create(NULL, 0, MMDS_MAX_REQUEST_BODY, &loop,
                                        mmds_http_handle, &server_store, &srv), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    http_server_adopt(srv, sv[0]);
    size_t off = 0;
    char *out = calloc(1, 1 << 16);
    size_t got = 0;
    for (int round = 0; round < 200; round++) {
        if (off < len) {
            ssize_t n = send(sv[1], raw + off, len - off, MSG_NOSIGNAL);
            if (n > 0)
                off += (size_t)n;
            if (off == len)
                shutdown(sv[1], SHUT_WR);
        }
        evloop_run_once(&loop, 10);
        ssize_t n = read(sv[1], out + got, (1 << 16) - 1 - got);
        if (n > 0)
            got += (size_t)n;
        if (n == 0 && off == len)
            break;
    }
    close(sv[1]);
    http_server_destroy(srv);
    evloop_destroy(&loop);
    return out;
}

static void expect_exchange(const char *raw, const char *want)
{
    char *out = exchange(raw, strlen(raw));
    if (!strstr(out, want))
        fail_msg("for %.60s... expected '%s' in: %.300s", raw, want, out);
    free(out);
}

static void test_hostile_http(void **state)
{
    (void)state;
    mmds_store_init(&server_store, MMDS_DEFAULT_SIZE_LIMIT);
    struct json_object *v = js("{\"k\": \"v\"}");
    assert_int_equal(mmds_store_put(&server_store, v), 0);
    json_object_put(v);
    expect_exchange("GET /k HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK");
    expect_exchange("GET /k HTTP/1.1\r\nHost: x\r\n\r\n", "Content-Type: text/plain");
    /* Two pipelined requests, both answered in order. */
    static const char two[] = "GET /k HTTP/1.1\r\n\r\nGET /no HTTP/1.1\r\n\r\n";
    char *out = exchange(two, strlen(two));
    assert_non_null(strstr(out, "200 OK"));
    assert_non_null(strstr(out, "404 Not Found"));
    assert_true(strstr(out, "200 OK") < strstr(out, "404 Not Found"));
    free(out);
    expect_exchange("BOGUS\r\n\r\n", "400 Bad Request");
    expect_exchange("GET /k HTTP/1.1\r\nNo-Colon\r\n\r\n", "400 Bad Request");
    expect_exchange("GET /k HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", "larger than");
    expect_exchange("GET /k HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "400 Bad Request");
    static char huge[20000];
    int n = snprintf(huge, sizeof(huge), "GET /k HTTP/1.1\r\nX-Big: ");
    memset(huge + n, 'a', 12000);
    strcpy(huge + n + 12000, "\r\n\r\n");
    expect_exchange(huge, "headers are longer than");
    static char url[3000];
    n = snprintf(url, sizeof(url), "GET /");
    memset(url + n, 'u', 2000);
    strcpy(url + n + 2000, " HTTP/1.1\r\n\r\n");
    expect_exchange(url, "request path is longer");
    /* Many headers: the first ones are kept, the rest parsed and dropped. */
    static char many[8000];
    n = snprintf(many, sizeof(many), "GET /k HTTP/1.1\r\n");
    for (int i = 0; i < 60; i++)
        n += snprintf(many + n, sizeof(many) - (size_t)n, "X-H%d: %d\r\n", i, i);
    snprintf(many + n, sizeof(many) - (size_t)n, "Accept: application/json\r\n\r\n");
    expect_exchange(many, "HTTP/1.1 200 OK");
    /* A header split across reads keeps its name and value whole. */
    server_store.version = MMDS_V2;
    expect_exchange("PUT /latest/api/token HTTP/1.1\r\nX-metadata-token-ttl-sec"
                    "onds: 21600\r\n\r\n", "X-metadata-token-ttl-seconds: 21600");
    expect_exchange("GET /k HTTP/1.1\r\n\r\n", "401 Unauthorized");
    mmds_store_free(&server_store);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_limit),
        cmocka_unit_test(test_merge_patch_rfc7386),
        cmocka_unit_test(test_render_paths),
        cmocka_unit_test(test_token_lifetimes),
        cmocka_unit_test(test_handler),
        cmocka_unit_test(test_hostile_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
