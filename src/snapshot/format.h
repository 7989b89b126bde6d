/* The snapshot state file: a versioned container of named, checksummed
 * sections.
 *
 *   header   "EMBERSNP", u32 format version, u32 section count,
 *            u64 file size, u32 CRC-32 of the preceding 24 bytes,
 *            u32 CRC-32 of everything after the header
 *   section  char name[16] (NUL-padded), u32 instance, u32 CRC-32 of the
 *            payload, u64 payload size; the payload, zero-padded to 8 bytes
 *   ...      the last section is "end" with no payload
 *
 * All integers little-endian. The reader checks every size against the file
 * before using it, every checksum, the version and the order, so a
 * truncated, corrupted or foreign file is refused with a message that says
 * which part is wrong. */
#ifndef EMBER_SNAPSHOT_FORMAT_H
#define EMBER_SNAPSHOT_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "util/err.h"

#define SNAP_MAGIC "EMBERSNP"
#define SNAP_FORMAT_VERSION 1
#define SNAP_HEADER_SIZE 32
#define SNAP_SECTION_HEADER_SIZE 32
#define SNAP_NAME_MAX 15
#define SNAP_MAX_SECTIONS 1024
/* A state file is refused before it is read if it is larger: its JSON
 * records are then parsed into objects several times their size, so this
 * bounds ember's memory on a hostile file (with the value and depth limits of
 * rec_parse). The largest part of a real one is a Diff snapshot's dirty
 * bitmap (hex: 1 byte per 16 KiB of guest memory, so about 15 MiB for a
 * 240 GiB guest); the writer refuses to write what the reader would refuse. */
#define SNAP_STATE_MAX (16ull << 20)

struct snap_section {
    char name[SNAP_NAME_MAX + 1];
    uint32_t instance;
    const uint8_t *data;
    uint64_t size;
};

struct snap_writer {
    struct buf buf;
    uint32_t nr_sections;
};

void snap_writer_init(struct snap_writer *w);
void snap_writer_add(struct snap_writer *w, const char *name, uint32_t instance,
                     const void *data, size_t size);
/* Close the container and write it to 'path' (through a temporary file
 * renamed into place, so a failed write never leaves half a snapshot). */
int snap_writer_finish(struct snap_writer *w, const char *path) EMBER_MUST_CHECK;
void snap_writer_free(struct snap_writer *w);

struct snap_reader {
    uint8_t *file;
    size_t size;
    struct snap_section *sections;
    unsigned nr_sections;
    char path[256];
};

/* Read and validate a whole state file. */
int snap_reader_open(struct snap_reader *r, const char *path) EMBER_MUST_CHECK;
/* Validate a state file already in memory (the reader keeps 'data'). */
int snap_reader_parse(struct snap_reader *r, uint8_t *data, size_t size) EMBER_MUST_CHECK;
/* The section, or NULL. */
const struct snap_section *snap_find(const struct snap_reader *r, const char *name,
                                     uint32_t instance);
unsigned snap_count(const struct snap_reader *r, const char *name);
void snap_reader_close(struct snap_reader *r);
/* The format version a state file says it has (its magic checked, not its
 * contents): what Firecracker's --describe-snapshot prints. */
int snap_file_version(const char *path, uint32_t *version) EMBER_MUST_CHECK;

#endif
