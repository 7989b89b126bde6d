#include "vmm/snapshot.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86_64/layout.h"
#include "snapshot/machine.h"
#include "util/fileio.h"
#include "util/log.h"
#include "util/util.h"
#include "vmm/vm.h"

#define SNAP_TYPE_FULL "full"
#define SNAP_TYPE_DIFF "diff"

/* --- the memory file ------------------------------------------------------ */

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < GM_PAGE_SIZE / 8; i++)
        if (w[i])
            return false;
    return true;
}

/* Pages of anonymous memory the guest never touched are neither present
 * nor swapped (the kernel's page map says so without reading them): they
 * are zero and become holes in the file. */
static int present_pages(const uint8_t *hva, size_t pages, uint64_t *map)
{
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    off_t off = (off_t)((uintptr_t)hva / GM_PAGE_SIZE * 8);
    ssize_t n = pread(fd, map, pages * 8, off);
    close(fd);
    return n == (ssize_t)(pages * 8) ? 0 : -EIO;
}

#define PAGE_PRESENT (1ull << 63)
#define PAGE_SWAPPED (1ull << 62)
#define CHUNK_PAGES 512 /* 2 MiB */

/* Write the pages of a region that 'wanted' selects (all, or the dirty
 * ones), skipping zero pages in a full snapshot; runs are coalesced. */
static int write_region(int fd, const struct gm_region *r, uint64_t file_off,
                        const uint64_t *dirty, bool anon)
{
    uint64_t pages = r->size / GM_PAGE_SIZE;
    uint64_t map[CHUNK_PAGES];
    for (uint64_t first = 0; first < pages; first += CHUNK_PAGES) {
        size_t n = (size_t)MIN(CHUNK_PAGES, pages - first);
        bool have_map = !dirty && anon && present_pages(r->hva + first * GM_PAGE_SIZE, n,
                                                        map) == 0;
        size_t run = 0, run_start = 0;
        for (size_t i = 0; i <= n; i++) {
            uint64_t p = first + i;
            bool want = false;
            if (i < n) {
                const uint8_t *page = r->hva + p * GM_PAGE_SIZE;
                if (dirty)
                    want = dirty[p / 64] >> (p % 64) & 1;
                else
                    want = (!have_map || (map[i] & (PAGE_PRESENT | PAGE_SWAPPED))) &&
                           !page_is_zero(page);
            }
            if (want) {
                if (!run)
                    run_start = i;
                run++;
                continue;
            }
            if (run) {
                uint64_t start = first + run_start;
                int ret = pwrite_all(fd, r->hva + start * GM_PAGE_SIZE, run * GM_PAGE_SIZE,
                                     file_off + start * GM_PAGE_SIZE);
                if (ret)
                    return ret;
                run = 0;
            }
        }
    }
    return 0;
}

/* The pages written since the last snapshot: the guest's (KVM's dirty
 * log) and ember's own writes for devices. Reading clears both. */
static int take_dirty(struct vm *vm, unsigned region, uint64_t **out)
{
    const struct gm_region *r = &vm->mem.regions[region];
    size_t words = (size_t)((r->size / GM_PAGE_SIZE + 63) / 64);
    uint64_t *bitmap = calloc(words, sizeof(uint64_t));
    if (!bitmap)
        return err_set(-ENOMEM, "out of memory");
    int ret = vm->accel->get_dirty_log(vm->avm, region, r->size, bitmap);
    if (ret) {
        free(bitmap);
        return ret;
    }
    gm_take_dirty(&vm->mem, region, bitmap);
    *out = bitmap;
    return 0;
}

static int write_memory(struct vm *vm, enum snapshot_type type, const char *path,
                        struct rec dirty_rec)
{
    struct atomic_file f;
    int ret = atomic_file_create(&f, path);
    if (ret)
        return err_prefix(ret, "memory file");
    uint64_t off = 0;
    for (unsigned i = 0; !ret && i < vm->mem.nr_ram; i++) {
        const struct gm_region *r = &vm->mem.regions[i];
        uint64_t *dirty = NULL;
        if (vm->cfg->track_dirty_pages && (ret = take_dirty(vm, i, &dirty)))
            break;
        if (type == SNAPSHOT_DIFF) /* the state file says which pages the diff holds */
            rec_put_bytes(rec_put_item(dirty_rec, "regions"), "dirty", dirty,
                          (size_t)((r->size / GM_PAGE_SIZE + 63) / 64) * 8);
        /* A restored guest's missing pages are in its memory file or with
         * its page-fault handler, not zero: only a booted one skips them. */
        int w = write_region(f.fd, r, off, type == SNAPSHOT_DIFF ? dirty : NULL,
                             !vm->files->restoring);
        free(dirty);
        if (w)
            ret = err_errno(w, "cannot write memory file %s", path);
        off += r->size;
    }
    if (!ret && ftruncate(f.fd, (off_t)off) < 0)
        ret = err_errno(-errno, "cannot size memory file %s", path);
    return atomic_file_finish(&f, path, ret);
}

/* --- the state file ------------------------------------------------------ */

static void add_rec(struct snap_writer *w, const char *name, struct rec r)
{
    size_t len;
    const char *text = rec_text(r, &len);
    snap_writer_add(w, name, 0, text, len);
}

static int save_cpus(struct vm *vm, struct snap_writer *w)
{
    for (unsigned i = 0; i < vm->nr_vcpus; i++) {
        struct buf b = {0};
        int ret = vm->accel->vcpu_save(vm->vcpus[i].accel_vcpu, &b);
        if (!ret)
            snap_writer_add(w, "vcpu", i, b.data, b.len);
        buf_free(&b);
        if (ret)
            return ret;
    }
    struct buf b = {0};
    int ret = vm->accel->vm_save(vm->avm, &b);
    if (!ret)
        snap_writer_add(w, "vm", 0, b.data, b.len);
    buf_free(&b);
    return ret;
}

int snapshot_create(struct vm *vm, enum snapshot_type type, const char *state_path,
                    const char *mem_path)
{
    if (vm->state != VM_PAUSED)
        return err_set(-EINVAL, "the VM must be paused");
    if (type == SNAPSHOT_DIFF && !vm->cfg->track_dirty_pages)
        return err_set(-EINVAL, "a Diff snapshot needs track_dirty_pages in the machine "
                                "configuration");
    struct snap_writer w;
    snap_writer_init(&w);
    struct rec machine = rec_new(), devices = rec_new(), memory = rec_new();
    machine_save(vm->cfg, machine);
    rec_put_str(memory, "type", type == SNAPSHOT_DIFF ? SNAP_TYPE_DIFF : SNAP_TYPE_FULL);
    rec_put_u64(memory, "size", vm->mem.total_size);
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    rec_put_u64(memory, "realtime_ns", (uint64_t)now.tv_sec * 1000000000ull +
                                           (uint64_t)now.tv_nsec);
    board_save(&vm->board, devices);
    int ret = save_cpus(vm, &w);
    if (!ret)
        ret = write_memory(vm, type, mem_path, memory);
    if (!ret) {
        add_rec(&w, "machine", machine);
        add_rec(&w, "memory", memory);
        add_rec(&w, "devices", devices);
        ret = snap_writer_finish(&w, state_path);
    }
    rec_free(machine);
    rec_free(devices);
    rec_free(memory);
    snap_writer_free(&w);
    return ret;
}

/* --- restoring ----------------------------------------------------------- */

static int parse_section(const struct snap_reader *r, const char *name, struct rec *out)
{
    const struct snap_section *s = snap_find(r, name, 0);
    if (!s)
        return err_set(-EINVAL, "no '%s' section", name);
    int ret = rec_parse(s->data, (size_t)s->size, out);
    return ret ? err_prefix(ret, "section '%s'", name) : 0;
}

static int check_memory(struct snapshot *s, struct rec memory)
{
    char type[8];
    uint64_t size;
    int ret = rec_get_str(memory, "type", type, sizeof(type));
    if (!ret && strcmp(type, SNAP_TYPE_FULL) && strcmp(type, SNAP_TYPE_DIFF))
        ret = err_set(-EINVAL, "unknown snapshot type '%s'", type);
    if (!ret)
        ret = rec_get_u64(memory, "size", CONFIG_MAX_MEM, &size);
    if (!ret && size != s->cfg.mem_size)
        ret = err_set(-EINVAL, "memory of %llu bytes for a guest of %llu",
                      (unsigned long long)size, (unsigned long long)s->cfg.mem_size);
    if (!ret)
        s->type = strcmp(type, SNAP_TYPE_DIFF) ? SNAPSHOT_FULL : SNAPSHOT_DIFF;
    if (!ret && rec_has(memory, "realtime_ns")) /* older snapshots lack it */
        ret = rec_get_u64(memory, "realtime_ns", UINT64_MAX, &s->realtime_ns);
    return ret ? err_prefix(ret, "section 'memory'") : 0;
}

int snapshot_open(struct snapshot *s, const char *state_path)
{
    memset(s, 0, sizeof(*s));
    struct rec memory = {NULL};
    int ret = snap_reader_open(&s->reader, state_path);
    if (ret)
        return ret;
    ret = parse_section(&s->reader, "machine", &s->config);
    if (!ret)
        ret = machine_load(s->config, &s->cfg, &s->template);
    if (!ret)
        ret = parse_section(&s->reader, "memory", &memory);
    if (!ret)
        ret = check_memory(s, memory);
    if (!ret)
        ret = parse_section(&s->reader, "devices", &s->devices);
    unsigned states = snap_count(&s->reader, "vcpu");
    if (!ret && states != s->cfg.nr_vcpus)
        ret = err_set(-EINVAL, "the machine has %u vCPUs but the file holds %u vCPU states",
                      s->cfg.nr_vcpus, states);
    for (unsigned i = 0; !ret && i < s->cfg.nr_vcpus; i++)
        if (!snap_find(&s->reader, "vcpu", i))
            ret = err_set(-EINVAL, "no state for vCPU %u", i);
    if (!ret && !snap_find(&s->reader, "vm", 0))
        ret = err_set(-EINVAL, "no 'vm' section");
    rec_free(memory);
    if (ret) {
        snapshot_close(s);
        return err_prefix(ret, "snapshot %s", state_path);
    }
    return 0;
}

/* clock_realtime: the guest's clock moves on by the wall-clock time the
 * snapshot waited (its TSCs do not), as after a host suspend. */
static int advance_clock(const struct snapshot *s, struct vm *vm)
{
    if (!s->realtime_ns)
        return err_set(-EINVAL, "clock_realtime: the snapshot does not record when it was "
                                "taken (made by an older ember)");
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    uint64_t now_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    uint64_t clock_ns;
    int ret = vm->accel->get_clock(vm->avm, &clock_ns);
    if (!ret && now_ns > s->realtime_ns)
        ret = vm->accel->set_clock(vm->avm, clock_ns + (now_ns - s->realtime_ns));
    if (!ret)
        log_info("clock_realtime: the guest's clock advanced by %llu ms",
                 (unsigned long long)((now_ns > s->realtime_ns ? now_ns - s->realtime_ns : 0) /
                                      1000000));
    return ret ? err_prefix(ret, "clock_realtime") : 0;
}

int snapshot_apply(struct snapshot *s, struct vm *vm)
{
    int ret = 0;
    for (unsigned i = 0; !ret && i < vm->nr_vcpus; i++) {
        const struct snap_section *sec = snap_find(&s->reader, "vcpu", i);
        ret = vm->accel->vcpu_restore(vm->vcpus[i].accel_vcpu, sec->data, (size_t)sec->size);
    }
    const struct snap_section *sec = snap_find(&s->reader, "vm", 0);
    if (!ret) /* after the vCPUs: the clock is computed from their TSCs */
        ret = vm->accel->vm_restore(vm->avm, sec->data, (size_t)sec->size);
    if (!ret && s->clock_realtime)
        ret = advance_clock(s, vm);
    if (!ret)
        ret = board_load(&vm->board, s->devices);
    return ret ? err_prefix(ret, "snapshot %s", s->reader.path) : 0;
}

void snapshot_close(struct snapshot *s)
{
    snap_reader_close(&s->reader);
    rec_free(s->config);
    rec_free(s->devices);
    memset(s, 0, sizeof(*s));
}

/* --- merging a Diff into its base ------------------------------------------ */

static int merge_region(int diff_fd, int base_fd, const uint8_t *bitmap, uint64_t pages,
                        uint64_t off)
{
    uint8_t *page = malloc(GM_PAGE_SIZE);
    if (!page)
        return -ENOMEM;
    int ret = 0;
    for (uint64_t p = 0; !ret && p < pages; p++) {
        if (!(bitmap[p / 8] >> (p % 8) & 1))
            continue;
        uint64_t at = off + p * GM_PAGE_SIZE;
        if (pread(diff_fd, page, GM_PAGE_SIZE, (off_t)at) != (ssize_t)GM_PAGE_SIZE)
            ret = -EIO;
        else
            ret = pwrite_all(base_fd, page, GM_PAGE_SIZE, at);
    }
    free(page);
    return ret;
}

static int file_size(int fd, uint64_t *size)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    *size = (uint64_t)st.st_size;
    return 0;
}

int snapshot_merge_memory(const char *diff_state_path, const char *diff_mem_path,
                          const char *base_mem_path)
{
    struct snapshot s;
    int ret = snapshot_open(&s, diff_state_path);
    if (ret)
        return ret;
    struct rec memory = {NULL};
    if (s.type != SNAPSHOT_DIFF)
        ret = err_set(-EINVAL, "snapshot %s is a Full snapshot, not a Diff", diff_state_path);
    if (!ret)
        ret = parse_section(&s.reader, "memory", &memory);
    int diff_fd = -1, base_fd = -1;
    uint64_t diff_size = 0, base_size = 0;
    if (!ret && ((diff_fd = open(diff_mem_path, O_RDONLY | O_CLOEXEC)) < 0 ||
                 file_size(diff_fd, &diff_size)))
        ret = err_errno(-errno, "memory file %s", diff_mem_path);
    if (!ret && ((base_fd = open(base_mem_path, O_RDWR | O_CLOEXEC)) < 0 ||
                 file_size(base_fd, &base_size)))
        ret = err_errno(-errno, "memory file %s", base_mem_path);
    if (!ret && (diff_size != s.cfg.mem_size || base_size != s.cfg.mem_size))
        ret = err_set(-EINVAL, "memory files of %llu and %llu bytes for a guest of %llu",
                      (unsigned long long)diff_size, (unsigned long long)base_size,
                      (unsigned long long)s.cfg.mem_size);
    /* The regions as the VM lays them out: below the PCI hole, then above 4 GiB. */
    uint64_t low = MIN(s.cfg.mem_size, LAYOUT_PCI_HOLE_START);
    uint64_t sizes[2] = {low, s.cfg.mem_size - low}, off = 0;
    for (unsigned i = 0; !ret && i < 2 && sizes[i]; i++) {
        struct rec item;
        size_t bytes = (size_t)((sizes[i] / GM_PAGE_SIZE + 63) / 64) * 8;
        uint8_t *bitmap = malloc(bytes);
        ret = bitmap ? rec_get_item(memory, "regions", i, &item)
                     : err_set(-ENOMEM, "out of memory");
        if (!ret)
            ret = rec_get_bytes(item, "dirty", bitmap, bytes);
        if (!ret && (ret = merge_region(diff_fd, base_fd, bitmap, sizes[i] / GM_PAGE_SIZE,
                                        off)))
            err_errno(ret, "merging into %s", base_mem_path);
        free(bitmap);
        off += sizes[i];
    }
    if (!ret && fsync(base_fd) < 0)
        ret = err_errno(-errno, "memory file %s", base_mem_path);
    if (diff_fd >= 0)
        close(diff_fd);
    if (base_fd >= 0)
        close(base_fd);
    rec_free(memory);
    snapshot_close(&s);
    return ret;
}
