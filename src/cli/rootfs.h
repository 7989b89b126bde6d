/* ember run --rootfs DIR[,ro] [-- COMMAND ARGS...]: DIR becomes the guest's
 * root over virtio-fs (tag "rootfs") and the default guest's init runs
 * COMMAND there (chroot), then powers off; ember exits with COMMAND's
 * status. The command and its status travel through a second, private
 * share (tag "ember-ctl": a temporary directory holding "cmd", which the
 * guest reads, and "status", which it writes), removed afterwards. */
#ifndef EMBER_CLI_ROOTFS_H
#define EMBER_CLI_ROOTFS_H

#include "cli/options.h"

struct rootfs_run {
    char ctl_dir[128]; /* "" until made */
    char cmdline[1024];
};

/* Add the two shares and the init's parameters to req->vm. */
int rootfs_prepare(struct cli_request *req, struct rootfs_run *rr) EMBER_MUST_CHECK;
/* The guest's command's exit status if the VM ended normally (vm_code 0)
 * and the guest reported one, else vm_code; removes the private share. */
int rootfs_finish(struct rootfs_run *rr, int vm_code);

#endif
