/* Host files a VM needs, opened and validated before any VM exists, so that
 * every problem with them is a setup error: the kernel and initrd (mapped,
 * and laid out by the boot protocol), the disk images and network backends,
 * and for a restore the snapshot's memory file. */
#ifndef EMBER_VMM_FILES_H
#define EMBER_VMM_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "arch/x86_64/boot.h"
#include "config/config.h"
#include "devices/board.h"
#include "virtio/backends/blockfile.h"
#include "virtio/backends/net_backend.h"
#include "virtio/backends/vsock_uds.h"

struct vm_files {
    struct boot_config boot;
    struct boot_layout layout;
    void *kernel_map, *initrd_map;
    size_t kernel_map_size, initrd_map_size;
    struct blockfile disks[CONFIG_MAX_DISKS];
    bool disk_taken[CONFIG_MAX_DISKS]; /* handed over to a device */
    unsigned nr_disks;
    struct net_backend *nets[CONFIG_MAX_NICS]; /* NULL once handed over */
    unsigned nr_nets;
    struct vsock_uds *vsock; /* vsock's listening socket; NULL once handed over */
    bool restoring; /* from a snapshot: memory through mem_fd or uffd_path */
    int mem_fd; /* restoring: the snapshot's memory file; -1 when booting or Uffd */
    const char *uffd_path; /* restoring: the page-fault handler's socket, or NULL */
    int serial_out_fd; /* cfg->serial_out_path, or -1 */
    struct pmem_backing pmem[CONFIG_MAX_PMEM]; /* fd opened; gpa and size once mapped */
    unsigned nr_pmem;
};

/* For a boot: the kernel, initrd, disks and network backends. */
int vm_files_open_boot(const struct vm_config *cfg, struct vm_files *files) EMBER_MUST_CHECK;
/* For a restore: the disks and network backends, and the memory file (which
 * must hold exactly cfg->mem_size bytes); no kernel. With 'uffd', mem_path
 * is a page-fault handler's socket instead (uffd.h), connected to once
 * guest memory exists. */
int vm_files_open_restore(const struct vm_config *cfg, const char *mem_path, bool uffd,
                          struct vm_files *files) EMBER_MUST_CHECK;
/* Once the kernel and initrd are in guest memory: unmap them, so their pages
 * do not stay resident in ember (they were ~17 MiB of its own memory). */
void vm_files_release_images(struct vm_files *files);
/* Once the files are open and before the VM's threads start: limit
 * ember's file access (util/landlock.h) to what the running VM may still
 * need — read-write beneath the directories of its disks and pmem files,
 * the vsock and GDB sockets, the serial output and the snapshot it came
 * from (mem_path; NULL when booting), everything beneath shared
 * directories, its device nodes, /etc/resolv.conf for user networking —
 * plus what the layers above added (the API socket's directory...). */
int vm_files_sandbox(const struct vm_config *cfg, const char *mem_path) EMBER_MUST_CHECK;
/* Close what no device took over (idempotent). */
void vm_files_close(struct vm_files *files);

#endif
