#include "vmm/files.h"

#include "util/landlock.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/fileio.h"
#include "util/log.h"
#include "util/util.h"

/* Map a whole file read-only; an empty file is an error for the caller. */
static int map_file(const char *path, const char *what, void **map, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "%s %s", what, path);
    struct stat st;
    int ret = 0;
    if (fstat(fd, &st) < 0)
        ret = err_errno(-errno, "%s %s", what, path);
    else if (!S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "%s %s: not a regular file", what, path);
    else if (st.st_size == 0)
        ret = err_set(-EINVAL, "%s %s: file is empty", what, path);
    if (!ret) {
        *size = (size_t)st.st_size;
        *map = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (*map == MAP_FAILED) {
            *map = NULL;
            ret = err_errno(-errno, "%s %s: cannot map", what, path);
        }
    }
    close(fd);
    return ret;
}

static int open_disks(const struct vm_config *cfg, struct vm_files *f)
{
    for (unsigned i = 0; i < cfg->nr_disks; i++) {
        const struct disk_config *d = &cfg->disks[i];
        int ret = blockfile_open(&f->disks[i], d->path, d->read_only, d->cache_none);
        if (ret)
            return ret;
        f->nr_disks = i + 1;
    }
    return 0;
}

static int open_nets(const struct vm_config *cfg, struct vm_files *f)
{
    for (unsigned i = 0; i < cfg->nr_nics; i++) {
        const struct nic_config *n = &cfg->nics[i];
        int ret = n->kind == NIC_TAP ? net_tap_open(n->tap_name, &f->nets[i])
                                     : net_slirp_open(n->hostfwd, n->nr_hostfwd, &f->nets[i]);
        if (ret)
            return ret;
        f->nr_nets = i + 1;
        if (n->mmds && (ret = net_mmds_open(cfg->mmds.ipv4, cfg->mmds.sock_path,
                                            &f->nets[i]->mmds)))
            return err_prefix(ret, "network interface %u", i);
    }
    return 0;
}

static int open_vsock(const struct vm_config *cfg, struct vm_files *f)
{
    return cfg->vsock.uds_path ? vsock_uds_open(cfg->vsock.uds_path, &f->vsock) : 0;
}

/* PUT /serial's serial_out_path: created if needed, never blocking. */
static int open_serial_out(const struct vm_config *cfg, struct vm_files *f)
{
    if (!cfg->serial_out_path)
        return 0;
    /* Like the logger's sink: a FIFO nobody reads yet opens too. */
    int fd = open_sink(cfg->serial_out_path);
    if (fd < 0)
        return err_errno(fd, "serial output %s", cfg->serial_out_path);
    f->serial_out_fd = fd;
    return 0;
}

static int open_pmem(const struct vm_config *cfg, struct vm_files *f)
{
    for (unsigned i = 0; i < cfg->nr_pmem; i++) {
        const struct pmem_config *p = &cfg->pmem[i];
        int fd = open(p->path, (p->read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) < 0) {
            int ret = err_errno(-errno, "pmem %s", p->path);
            if (fd >= 0)
                close(fd);
            return ret;
        }
        f->pmem[f->nr_pmem++] = (struct pmem_backing){.fd = fd,
                                                      .file_size = (uint64_t)st.st_size};
        if (!S_ISREG(st.st_mode) || st.st_size == 0)
            return err_set(-EINVAL, "pmem %s: not a regular file with data", p->path);
    }
    return 0;
}

static int open_memory_file(const struct vm_config *cfg, const char *mem_path,
                            struct vm_files *f)
{
    f->mem_fd = open(mem_path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    int ret = f->mem_fd < 0 ? err_errno(-errno, "memory file %s", mem_path) : 0;
    if (!ret && fstat(f->mem_fd, &st) < 0)
        ret = err_errno(-errno, "memory file %s", mem_path);
    if (!ret && !S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "memory file %s: not a regular file", mem_path);
    if (!ret && (uint64_t)st.st_size != cfg->mem_size)
        ret = err_set(-EINVAL, "memory file %s: %llu bytes, the snapshot's guest has %llu",
                      mem_path, (unsigned long long)st.st_size,
                      (unsigned long long)cfg->mem_size);
    return ret;
}

int vm_files_open_restore(const struct vm_config *cfg, const char *mem_path, bool uffd,
                          struct vm_files *f)
{
    memset(f, 0, sizeof(*f));
    f->serial_out_fd = f->mem_fd = -1;
    f->restoring = true;
    int ret = 0;
    if (uffd && !*mem_path)
        ret = err_set(-EINVAL, "uffd: empty page-fault handler socket path");
    else if (uffd)
        f->uffd_path = mem_path;
    else
        ret = open_memory_file(cfg, mem_path, f);
    if (!ret)
        ret = open_disks(cfg, f);
    if (!ret)
        ret = open_nets(cfg, f);
    if (!ret)
        ret = open_vsock(cfg, f);
    if (!ret)
        ret = open_serial_out(cfg, f);
    if (!ret)
        ret = open_pmem(cfg, f);
    if (ret)
        vm_files_close(f);
    return ret;
}

int vm_files_open_boot(const struct vm_config *cfg, struct vm_files *f)
{
    memset(f, 0, sizeof(*f));
    f->mem_fd = f->serial_out_fd = -1;
    int ret = open_serial_out(cfg, f);
    if (!ret)
        ret = map_file(cfg->kernel_path, "kernel", &f->kernel_map, &f->kernel_map_size);
    if (!ret && cfg->initrd_path)
        ret = map_file(cfg->initrd_path, "initrd", &f->initrd_map, &f->initrd_map_size);
    if (!ret)
        ret = open_disks(cfg, f);
    if (!ret)
        ret = open_nets(cfg, f);
    if (!ret)
        ret = open_vsock(cfg, f);
    if (!ret)
        ret = open_pmem(cfg, f);
    if (ret) {
        vm_files_close(f);
        return ret;
    }
    f->boot = (struct boot_config){
        .kernel = {cfg->kernel_path, f->kernel_map, f->kernel_map_size},
        .initrd = {cfg->initrd_path, f->initrd_map, f->initrd_map_size},
        .cmdline = cfg->cmdline,
        .ram_size = cfg->mem_size,
        .long_mode_entry = cfg->accel == ACCEL_SOFT,
    };
    ret = boot_prepare(&f->boot, &f->layout);
    if (ret) {
        vm_files_close(f);
        return ret;
    }
    const struct kernel_image *k = &f->layout.kernel;
    static const char *const entries[] = {
        [ENTRY_LINUX64] = "64-bit", [ENTRY_LINUX32] = "32-bit", [ENTRY_PVH] = "PVH"};
    if (k->format == KERNEL_BZIMAGE)
        log_info("kernel: bzImage, boot protocol %u.%02u, %s entry at %#llx", k->protocol >> 8,
                 k->protocol & 0xff, entries[k->entry], (unsigned long long)k->entry_addr);
    else
        log_info("kernel: ELF, %s entry at %#llx", entries[k->entry],
                 (unsigned long long)k->entry_addr);
    if (f->layout.initrd_size)
        log_info("initrd: %llu bytes at %#llx", (unsigned long long)f->layout.initrd_size,
                 (unsigned long long)f->layout.initrd_gpa);
    return 0;
}

static void unmap_images(struct vm_files *f)
{
    if (f->kernel_map)
        munmap(f->kernel_map, f->kernel_map_size);
    if (f->initrd_map)
        munmap(f->initrd_map, f->initrd_map_size);
    f->kernel_map = f->initrd_map = NULL;
    f->kernel_map_size = f->initrd_map_size = 0;
}

void vm_files_release_images(struct vm_files *f)
{
    unmap_images(f);
    /* The layout points into the files too: nothing may read it now. */
    f->boot.kernel.data = f->boot.initrd.data = NULL;
    memset(&f->layout.kernel, 0, sizeof(f->layout.kernel));
}

void vm_files_close(struct vm_files *f)
{
    vsock_uds_destroy(f->vsock);
    for (unsigned i = 0; i < f->nr_nets; i++)
        if (f->nets[i])
            net_backend_destroy(f->nets[i]);
    for (unsigned i = 0; i < f->nr_disks; i++)
        if (!f->disk_taken[i])
            blockfile_close(&f->disks[i]);
    unmap_images(f);
    for (unsigned i = 0; i < f->nr_pmem; i++)
        close(f->pmem[i].fd);
    if (f->mem_fd >= 0)
        close(f->mem_fd);
    if (f->serial_out_fd >= 0)
        close(f->serial_out_fd);
    memset(f, 0, sizeof(*f));
    f->mem_fd = f->serial_out_fd = -1;
}


/* The GDB stub's "unix:PATH" address names a socket ember creates. */
static const char *gdb_socket_path(const char *address)
{
    return address && !strncmp(address, "unix:", 5) ? address + 5 : NULL;
}

int vm_files_sandbox(const struct vm_config *cfg, const char *mem_path)
{
    /* Drives may be swapped (PATCH /drives) for files beside them, and
     * snapshots written there: their directories, not just the files. */
    int ret = 0;
    for (unsigned i = 0; !ret && i < cfg->nr_disks; i++)
        ret = landlock_allow_dir_of(cfg->disks[i].path, LANDLOCK_FILES);
    for (unsigned i = 0; !ret && i < cfg->nr_pmem; i++)
        ret = landlock_allow_dir_of(cfg->pmem[i].path, LANDLOCK_FILES);
    for (unsigned i = 0; !ret && i < cfg->nr_shares; i++)
        ret = landlock_allow(cfg->shares[i].path, LANDLOCK_TREE);
    if (!ret)
        ret = landlock_allow_dir_of(cfg->vsock.uds_path, LANDLOCK_FILES);
    if (!ret)
        ret = landlock_allow_dir_of(gdb_socket_path(cfg->gdb_address), LANDLOCK_FILES);
    if (!ret)
        ret = landlock_allow_dir_of(cfg->serial_out_path, LANDLOCK_FILES);
    if (!ret)
        ret = landlock_allow_dir_of(mem_path, LANDLOCK_FILES);
    /* The engine's profiling map (EMBER_PERF_MAP=1) is written by vCPUs
     * created after this. */
    const char *perf_map = getenv("EMBER_PERF_MAP");
    if (!ret && perf_map && !strcmp(perf_map, "1"))
        ret = landlock_allow_dir_of("/tmp/perf-map", LANDLOCK_FILES);
    /* Read again at run time: the kernel files only by a reboot's reload
     * (never, today), libslirp's DNS settings, the Uffd watcher's and the
     * Diff snapshot's views of ember's own memory. */
    static const char *const read_only[] = {"/etc/resolv.conf", "/proc/self/fdinfo",
                                            "/proc/self/pagemap"};
    for (size_t i = 0; !ret && i < sizeof(read_only) / sizeof(read_only[0]); i++)
        ret = landlock_allow(read_only[i], LANDLOCK_READ);
    if (!ret)
        ret = landlock_allow(cfg->kernel_path, LANDLOCK_READ);
    if (!ret)
        ret = landlock_allow(cfg->initrd_path, LANDLOCK_READ);
    static const char *const devices[] = {"/dev/kvm", "/dev/net/tun", "/dev/userfaultfd",
                                          "/dev/urandom", "/dev/null"};
    for (size_t i = 0; !ret && i < sizeof(devices) / sizeof(devices[0]); i++)
        ret = landlock_allow(devices[i], LANDLOCK_DEVICE);
    /* Threads are named by the loop through their comm files. */
    if (!ret)
        ret = landlock_allow("/proc/self/task", LANDLOCK_READ | LANDLOCK_DEVICE);
    return ret ? ret : landlock_seal();
}
