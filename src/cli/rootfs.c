#include "cli/rootfs.h"

#include "util/landlock.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/log.h"

#define ROOTFS_TAG "rootfs"
#define CTL_TAG "ember-ctl"

/* 'arg' as one word for sh: single-quoted, each ' as '\''. */
static void put_quoted(FILE *f, const char *arg)
{
    fputc('\'', f);
    for (const char *p = arg; *p; p++) {
        if (*p == '\'')
            fputs("'\\''", f);
        else
            fputc(*p, f);
    }
    fputc('\'', f);
}

static int write_command(const struct cli_request *req, const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/cmd", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return err_errno(-errno, "--rootfs: cannot write %s", path);
    if (!req->rootfs_argc) {
        fputs("exec /bin/sh -l", f);
    } else {
        for (int i = 0; i < req->rootfs_argc; i++) {
            if (i)
                fputc(' ', f);
            put_quoted(f, req->rootfs_argv[i]);
        }
    }
    fputc('\n', f);
    return fclose(f) ? err_errno(-errno, "--rootfs: cannot write %s", path) : 0;
}

static int add_share(struct vm_config *cfg, const char *path, const char *tag, bool ro)
{
    if (cfg->nr_shares == CONFIG_MAX_SHARES)
        return err_set(-EINVAL, "--rootfs: too many shared directories (at most %d with the "
                                "root's two)", CONFIG_MAX_SHARES - 2);
    struct fs_config *c = &cfg->shares[cfg->nr_shares];
    *c = (struct fs_config){.path = path, .tag = tag, .read_only = ro};
    int ret = fs_config_check(c, cfg->shares, cfg->nr_shares);
    if (!ret)
        cfg->nr_shares++;
    return ret;
}

static void remove_ctl(struct rootfs_run *rr)
{
    if (!rr->ctl_dir[0])
        return;
    DIR *d = opendir(rr->ctl_dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(dirfd(d), e->d_name, 0);
    if (d)
        closedir(d);
    unlinkat(AT_FDCWD, rr->ctl_dir, AT_REMOVEDIR); /* rmdir is not in the seccomp list */
    rr->ctl_dir[0] = 0;
}

int rootfs_prepare(struct cli_request *req, struct rootfs_run *rr)
{
    struct vm_config *cfg = &req->vm;
    const char *tmp = getenv("TMPDIR");
    snprintf(rr->ctl_dir, sizeof(rr->ctl_dir), "%s/ember-rootfs-XXXXXX",
             tmp && *tmp && strlen(tmp) < 64 ? tmp : "/tmp");
    if (!mkdtemp(rr->ctl_dir)) {
        int e = -errno;
        rr->ctl_dir[0] = 0;
        return err_errno(e, "--rootfs: cannot make a temporary directory");
    }
    int ret = write_command(req, rr->ctl_dir);
    if (!ret)
        ret = add_share(cfg, req->rootfs, ROOTFS_TAG, req->rootfs_ro);
    if (!ret)
        ret = add_share(cfg, rr->ctl_dir, CTL_TAG, false);
    if (!ret) /* removed at the end, under Landlock */
        ret = landlock_allow_dir_of(rr->ctl_dir, LANDLOCK_RMDIR);
    if (ret) {
        remove_ctl(rr);
        return ret;
    }
    const char *base = cfg->cmdline ? cfg->cmdline : CONFIG_DEFAULT_CMDLINE;
    snprintf(rr->cmdline, sizeof(rr->cmdline), "%s ember_root=%s%s", base, ROOTFS_TAG,
             req->rootfs_ro ? " ember_root_ro=1" : "");
    cfg->cmdline = rr->cmdline;
    return 0;
}

int rootfs_finish(struct rootfs_run *rr, int vm_code)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/status", rr->ctl_dir);
    FILE *f = rr->ctl_dir[0] ? fopen(path, "r") : NULL;
    int status = -1;
    if (f) {
        if (fscanf(f, "%d", &status) != 1 || status < 0 || status > 255)
            status = -1;
        fclose(f);
    }
    remove_ctl(rr);
    if (vm_code != 0)
        return vm_code;
    if (status < 0) {
        log_warn("--rootfs: the guest stopped without the command's exit status");
        return vm_code;
    }
    return status;
}
