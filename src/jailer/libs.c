#include "jailer/libs.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/dlopen_libs.h"
#include "util/fileio.h"

static int read_at(int fd, void *buf, size_t len, off_t off)
{
    ssize_t n = pread(fd, buf, len, off);
    return n == (ssize_t)len ? 0 : -EIO;
}

int jail_elf_interp(const char *exec_path, char *interp, size_t size)
{
    interp[0] = '\0';
    int fd = open(exec_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_errno(-errno, "cannot open %s", exec_path);
    Elf64_Ehdr eh;
    int ret = read_at(fd, &eh, sizeof(eh), 0);
    if (ret || memcmp(eh.e_ident, ELFMAG, SELFMAG) || eh.e_ident[EI_CLASS] != ELFCLASS64 ||
        eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > 256) {
        close(fd);
        return err_set(-ENOEXEC, "%s is not a 64-bit ELF program", exec_path);
    }
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (read_at(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + i * sizeof(ph)))) {
            ret = err_set(-ENOEXEC, "%s: truncated program headers", exec_path);
            break;
        }
        if (ph.p_type != PT_INTERP)
            continue;
        if (ph.p_filesz < 2 || ph.p_filesz > size ||
            read_at(fd, interp, ph.p_filesz, (off_t)ph.p_offset) || interp[0] != '/' ||
            interp[ph.p_filesz - 1] != '\0' || strlen(interp) != ph.p_filesz - 1) {
            interp[0] = '\0';
            ret = err_set(-ENOEXEC, "%s: bad interpreter path", exec_path);
        }
        break;
    }
    close(fd);
    return ret;
}

static int add_lib(struct jail_libs *libs, const char *path, size_t len)
{
    for (unsigned i = 0; i < libs->n; i++)
        if (strlen(libs->paths[i]) == len && !strncmp(libs->paths[i], path, len))
            return 0;
    if (libs->n == JAIL_MAX_LIBS || len >= JAIL_LIB_PATH_MAX)
        return err_set(-E2BIG, "too many libraries, or a path too long");
    memcpy(libs->paths[libs->n], path, len);
    libs->paths[libs->n++][len] = '\0';
    return 0;
}

int jail_parse_lib_list(const char *text, struct jail_libs *libs)
{
    libs->n = 0;
    for (const char *line = text; *line;) {
        size_t len = strcspn(line, "\n");
        char buf[JAIL_LIB_PATH_MAX * 2];
        snprintf(buf, sizeof(buf), "%.*s", (int)len, line);
        line += len + (line[len] == '\n');
        char *arrow = strstr(buf, "=> ");
        char *path = arrow ? arrow + 3 : buf + strspn(buf, " \t");
        if (!strncmp(path, "not found", 9))
            return err_set(-ENOENT, "a library is missing: %s", buf + strspn(buf, " \t"));
        if (path[0] != '/')
            continue; /* the vDSO, or a line that names no file */
        size_t plen = strcspn(path, " \t");
        int ret = add_lib(libs, path, plen);
        if (ret)
            return ret;
    }
    return 0;
}

int jail_copy_file(const char *src, const char *dst, unsigned mode)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return err_errno(-errno, "cannot open %s", src);
    struct stat st;
    int out = -1, ret = 0;
    if (fstat(in, &st) < 0 || !S_ISREG(st.st_mode))
        ret = err_set(-EINVAL, "%s is not a regular file", src);
    if (!ret && (out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
                            mode)) < 0)
        ret = err_errno(-errno, "cannot create %s", dst);
    struct stat ost;
    /* A hard link planted at dst would make the copy write someone else's file. */
    if (!ret && (fstat(out, &ost) < 0 || ost.st_nlink > 1 || !S_ISREG(ost.st_mode)))
        ret = err_set(-EEXIST, "%s exists and is not a plain file of its own", dst);
    for (off_t left = st.st_size; !ret && left > 0;) {
        ssize_t n = sendfile(out, in, NULL, (size_t)left);
        if (n <= 0)
            ret = err_errno(n < 0 ? -errno : -EIO, "cannot copy %s to %s", src, dst);
        else
            left -= n;
    }
    if (!ret && fchmod(out, mode) < 0)
        ret = err_errno(-errno, "cannot set the mode of %s", dst);
    if (out >= 0)
        close(out);
    close(in);
    return ret;
}

static int mkdirs_for(const char *root, const char *path)
{
    char buf[PATH_MAX];
    if ((size_t)snprintf(buf, sizeof(buf), "%s%s", root, path) >= sizeof(buf))
        return err_set(-ENAMETOOLONG, "path too long: %s%s", root, path);
    for (char *p = buf + strlen(root) + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return err_errno(-errno, "cannot create %s", buf);
        *p = '/';
    }
    return 0;
}

/* The interpreter's listing of exec_path's libraries, into out. */
static int list_libraries(const char *interp, const char *exec_path, char *out, size_t size)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) < 0)
        return err_errno(-errno, "pipe");
    pid_t pid = fork();
    if (pid < 0) {
        close(pipefd[0]);
        close(pipefd[1]);
        return err_errno(-errno, "fork");
    }
    if (pid == 0) {
        dup2(pipefd[1], STDOUT_FILENO);
        char *argv[] = {(char *)interp, "--list", (char *)exec_path, NULL};
        char *envp[] = {NULL}; /* no LD_LIBRARY_PATH or LD_PRELOAD from anyone */
        execve(interp, argv, envp);
        _exit(127);
    }
    close(pipefd[1]);
    size_t used = 0;
    ssize_t n;
    while (used + 1 < size && (n = read(pipefd[0], out + used, size - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
    close(pipefd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status))
        return err_set(-EIO, "'%s --list %s' failed (status %d): %s", interp, exec_path,
                       WIFEXITED(status) ? WEXITSTATUS(status) : -1, out);
    return 0;
}

static bool file_mentions(const char *path, const char *text)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    bool found = false;
    if (fd >= 0 && !fstat(fd, &st) && st.st_size > 0) {
        void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map != MAP_FAILED) {
            found = memmem(map, (size_t)st.st_size, text, strlen(text) + 1) != NULL;
            munmap(map, (size_t)st.st_size);
        }
    }
    if (fd >= 0)
        close(fd);
    return found;
}

/* The libraries ember loads with dlopen() when a VM needs them (user
 * networking's libslirp and GLib): the interpreter's listing cannot name
 * them. Each one whose soname the program's file carries is resolved as
 * the dynamic loader resolves it, and added with its own libraries. One
 * that is not installed is left out: the program says so if it needs it. */
static int add_dlopen_libraries(const char *interp, const char *exec_path,
                                struct jail_libs *libs)
{
    static const char *const sonames[] = EMBER_DLOPEN_SONAMES;
    static char listing[65536];
    static struct jail_libs more;
    for (size_t i = 0; i < sizeof(sonames) / sizeof(sonames[0]); i++) {
        if (!file_mentions(exec_path, sonames[i]))
            continue;
        void *handle = dlopen(sonames[i], RTLD_LAZY | RTLD_LOCAL);
        struct link_map *lm = NULL;
        if (!handle || dlinfo(handle, RTLD_DI_LINKMAP, &lm) || !lm || lm->l_name[0] != '/')
            continue;
        int ret = list_libraries(interp, lm->l_name, listing, sizeof(listing));
        if (!ret)
            ret = jail_parse_lib_list(listing, &more);
        if (!ret)
            ret = add_lib(libs, lm->l_name, strlen(lm->l_name));
        for (unsigned k = 0; !ret && k < more.n; k++)
            ret = add_lib(libs, more.paths[k], strlen(more.paths[k]));
        if (ret)
            return err_prefix(ret, "the libraries of %s", sonames[i]);
    }
    return 0;
}

int jail_copy_libraries(const char *exec_path, const char *root)
{
    char interp[PATH_MAX];
    int ret = jail_elf_interp(exec_path, interp, sizeof(interp));
    if (ret || !interp[0])
        return ret; /* a static program */
    static char listing[65536];
    static struct jail_libs libs;
    if ((ret = list_libraries(interp, exec_path, listing, sizeof(listing))) ||
        (ret = jail_parse_lib_list(listing, &libs)))
        return err_prefix(ret, "the libraries of %s", exec_path);
    if ((ret = add_dlopen_libraries(interp, exec_path, &libs)) ||
        (ret = add_lib(&libs, interp, strlen(interp))))
        return ret;
    for (unsigned i = 0; i < libs.n; i++) {
        char dst[PATH_MAX];
        snprintf(dst, sizeof(dst), "%s%s", root, libs.paths[i]);
        if ((ret = mkdirs_for(root, libs.paths[i])) ||
            (ret = jail_copy_file(libs.paths[i], dst, 0555)))
            return ret;
    }
    return 0;
}
