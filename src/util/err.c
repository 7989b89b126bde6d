#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char err_buf[512];

static void err_vformat(const char *fmt, va_list ap)
{
    vsnprintf(err_buf, sizeof(err_buf), fmt, ap);
}

int err_set(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vformat(fmt, ap);
    va_end(ap);
    return code;
}

int err_errno(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    err_vformat(fmt, ap);
    va_end(ap);
    size_t used = strlen(err_buf);
    snprintf(err_buf + used, sizeof(err_buf) - used, ": %s", strerror(-code));
    return code;
}

int err_prefix(int code, const char *fmt, ...)
{
    char old[sizeof(err_buf)];
    memcpy(old, err_buf, sizeof(old));
    va_list ap;
    va_start(ap, fmt);
    err_vformat(fmt, ap);
    va_end(ap);
    size_t used = strlen(err_buf);
    snprintf(err_buf + used, sizeof(err_buf) - used, ": %s",
             old[0] ? old : strerror(-code));
    return code;
}

const char *err_msg(void)
{
    return err_buf[0] ? err_buf : "unknown error";
}

void err_clear(void)
{
    err_buf[0] = '\0';
}
