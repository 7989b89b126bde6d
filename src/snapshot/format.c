#include "snapshot/format.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "util/fileio.h"
#include "util/util.h"

static uint32_t crc_of(const void *data, size_t len)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    const uint8_t *p = data;
    while (len) { /* zlib takes 32-bit lengths */
        uInt chunk = len > (1u << 30) ? (1u << 30) : (uInt)len;
        crc = crc32(crc, p, chunk);
        p += chunk;
        len -= chunk;
    }
    return (uint32_t)crc;
}

static size_t padded(uint64_t size)
{
    return (size_t)((size + 7) & ~7ull);
}

void snap_writer_init(struct snap_writer *w)
{
    memset(w, 0, sizeof(*w));
    static const uint8_t zero[SNAP_HEADER_SIZE];
    buf_put(&w->buf, zero, sizeof(zero)); /* filled in by finish */
}

void snap_writer_add(struct snap_writer *w, const char *name, uint32_t instance,
                     const void *data, size_t size)
{
    char field[SNAP_NAME_MAX + 1] = {0};
    strncpy(field, name, SNAP_NAME_MAX);
    buf_put(&w->buf, field, sizeof(field));
    buf_put_u32(&w->buf, instance);
    buf_put_u32(&w->buf, crc_of(data, size));
    buf_put_u64(&w->buf, size);
    buf_put(&w->buf, data, size);
    static const uint8_t pad[8];
    buf_put(&w->buf, pad, padded(size) - size);
    w->nr_sections++;
}

int snap_writer_finish(struct snap_writer *w, const char *path)
{
    snap_writer_add(w, "end", 0, NULL, 0);
    if (w->buf.failed)
        return err_set(-ENOMEM, "out of memory building the snapshot");
    if (w->buf.len > SNAP_STATE_MAX)
        return err_set(-EFBIG, "the state file would be %zu bytes, more than ember reads "
                               "back (%llu MiB)", w->buf.len, SNAP_STATE_MAX >> 20);
    uint8_t *h = w->buf.data;
    memcpy(h, SNAP_MAGIC, 8);
    le32_store(h + 8, SNAP_FORMAT_VERSION);
    le32_store(h + 12, w->nr_sections);
    le64_store(h + 16, w->buf.len);
    le32_store(h + 24, crc_of(h, 24));
    le32_store(h + 28, crc_of(h + SNAP_HEADER_SIZE, w->buf.len - SNAP_HEADER_SIZE));
    struct atomic_file f;
    int ret = atomic_file_create(&f, path);
    if (ret)
        return err_prefix(ret, "snapshot");
    ret = write_all(f.fd, w->buf.data, w->buf.len);
    if (ret)
        err_errno(ret, "cannot write snapshot file %s", path);
    return atomic_file_finish(&f, path, ret);
}

void snap_writer_free(struct snap_writer *w)
{
    buf_free(&w->buf);
}

static int check_header(const uint8_t *p, size_t size)
{
    if (size < SNAP_HEADER_SIZE)
        return err_set(-EINVAL, "truncated: %zu bytes is shorter than the header", size);
    if (memcmp(p, SNAP_MAGIC, 8))
        return err_set(-EINVAL, "not an ember snapshot state file");
    /* The version first: another version may lay out (and check) its
     * header differently. */
    uint32_t version = le32_load(p + 8);
    if (version != SNAP_FORMAT_VERSION)
        return err_set(-EINVAL, "snapshot format version %u; this ember reads version %u",
                       version, SNAP_FORMAT_VERSION);
    if (le32_load(p + 24) != crc_of(p, 24))
        return err_set(-EINVAL, "checksum mismatch in the header (corrupted)");
    uint64_t claimed = le64_load(p + 16);
    if (claimed > size)
        return err_set(-EINVAL, "truncated: the header says %llu bytes, the file has %zu",
                       (unsigned long long)claimed, size);
    if (claimed < size)
        return err_set(-EINVAL, "%zu bytes of unexpected data after the snapshot",
                       size - (size_t)claimed);
    /* Every byte counts, padding and section headers included. */
    if (le32_load(p + 28) != crc_of(p + SNAP_HEADER_SIZE, size - SNAP_HEADER_SIZE))
        return err_set(-EINVAL, "checksum mismatch: the file is corrupted");
    uint32_t count = le32_load(p + 12);
    if (count == 0 || count > SNAP_MAX_SECTIONS)
        return err_set(-EINVAL, "bad section count %u", count);
    return 0;
}

static int parse_section(const uint8_t *p, size_t size, size_t *off, unsigned index,
                         struct snap_section *s)
{
    if (size - *off < SNAP_SECTION_HEADER_SIZE)
        return err_set(-EINVAL, "truncated in the header of section %u", index);
    const uint8_t *h = p + *off;
    if (!memchr(h, '\0', SNAP_NAME_MAX + 1))
        return err_set(-EINVAL, "section %u has a malformed name", index);
    memcpy(s->name, h, SNAP_NAME_MAX + 1);
    for (const char *c = s->name; *c; c++)
        if (*c < 0x20 || *c > 0x7e)
            return err_set(-EINVAL, "section %u has a malformed name", index);
    s->instance = le32_load(h + 16);
    uint32_t crc = le32_load(h + 20);
    s->size = le64_load(h + 24);
    *off += SNAP_SECTION_HEADER_SIZE;
    if (s->size > size - *off || padded(s->size) > size - *off)
        return err_set(-EINVAL, "section '%s' #%u: truncated (%llu bytes announced, %zu left)",
                       s->name, s->instance, (unsigned long long)s->size, size - *off);
    s->data = p + *off;
    if (crc_of(s->data, (size_t)s->size) != crc)
        return err_set(-EINVAL, "section '%s' #%u: checksum mismatch (corrupted)", s->name,
                       s->instance);
    *off += padded(s->size);
    return 0;
}

int snap_reader_parse(struct snap_reader *r, uint8_t *data, size_t size)
{
    r->file = data;
    r->size = size;
    r->sections = NULL;
    r->nr_sections = 0;
    int ret = check_header(data, size);
    if (ret)
        return ret;
    uint32_t count = le32_load(data + 12);
    r->sections = calloc(count, sizeof(*r->sections));
    if (!r->sections)
        return err_set(-ENOMEM, "out of memory");
    size_t off = SNAP_HEADER_SIZE;
    for (unsigned i = 0; i < count; i++) {
        struct snap_section *s = &r->sections[i];
        if ((ret = parse_section(data, size, &off, i, s)))
            return ret;
        r->nr_sections = i + 1;
        bool last = i + 1 == count;
        if (!strcmp(s->name, "end") != last)
            return err_set(-EINVAL, last ? "the last section is '%s', not 'end'"
                                         : "an 'end' section before the last (%s)", s->name);
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(r->sections[j].name, s->name) && r->sections[j].instance == s->instance)
                return err_set(-EINVAL, "section '%s' #%u appears twice", s->name, s->instance);
    }
    if (off != size)
        return err_set(-EINVAL, "%zu bytes after the 'end' section", size - off);
    return 0;
}

int snap_reader_open(struct snap_reader *r, const char *path)
{
    memset(r, 0, sizeof(*r));
    snprintf(r->path, sizeof(r->path), "%s", path);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "snapshot %s", path);
    struct stat st;
    int ret = fstat(fd, &st) < 0 ? err_errno(-errno, "snapshot %s", path) : 0;
    if (!ret && !S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "snapshot %s: not a regular file", path);
    if (!ret && (uint64_t)st.st_size > SNAP_STATE_MAX)
        ret = err_set(-EFBIG, "snapshot %s: %lld bytes is too large for a state file "
                              "(at most %llu MiB); refused before reading it",
                      path, (long long)st.st_size, SNAP_STATE_MAX >> 20);
    uint8_t *data = NULL;
    size_t size = (size_t)st.st_size;
    if (!ret && !(data = malloc(size ? size : 1)))
        ret = err_set(-ENOMEM, "out of memory");
    for (size_t got = 0; !ret && got < size;) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            ret = n < 0 ? err_errno(-errno, "snapshot %s", path)
                        : err_set(-EIO, "snapshot %s: shorter than its size", path);
            break;
        }
        got += (size_t)n;
    }
    close(fd);
    if (ret) {
        free(data);
        return ret;
    }
    ret = snap_reader_parse(r, data, size);
    if (ret) {
        snap_reader_close(r);
        return err_prefix(ret, "snapshot %s", path);
    }
    snprintf(r->path, sizeof(r->path), "%s", path);
    return 0;
}

const struct snap_section *snap_find(const struct snap_reader *r, const char *name,
                                     uint32_t instance)
{
    for (unsigned i = 0; i < r->nr_sections; i++)
        if (!strcmp(r->sections[i].name, name) && r->sections[i].instance == instance)
            return &r->sections[i];
    return NULL;
}

unsigned snap_count(const struct snap_reader *r, const char *name)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->nr_sections; i++)
        n += !strcmp(r->sections[i].name, name);
    return n;
}

void snap_reader_close(struct snap_reader *r)
{
    free(r->file);
    free(r->sections);
    memset(r, 0, sizeof(*r));
}

int snap_file_version(const char *path, uint32_t *version)
{
    uint8_t h[12];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "snapshot %s", path);
    ssize_t n = read(fd, h, sizeof(h));
    int saved = errno;
    close(fd);
    if (n < 0)
        return err_errno(-saved, "snapshot %s", path);
    if (n < (ssize_t)sizeof(h) || memcmp(h, SNAP_MAGIC, 8))
        return err_set(-EINVAL, "snapshot %s: not an ember snapshot state file", path);
    *version = le32_load(h + 8);
    return 0;
}
