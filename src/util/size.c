#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

int parse_size(const char *text, uint64_t *bytes)
{
    if (!text || !isdigit((unsigned char)text[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long value = strtoull(text, &end, 10);
    if (errno || end == text)
        return -EINVAL;
    unsigned shift;
    switch (toupper((unsigned char)*end)) {
    case '\0':
    case 'M': shift = 20; break;
    case 'K': shift = 10; break;
    case 'G': shift = 30; break;
    case 'T': shift = 40; break;
    default: return -EINVAL;
    }
    if (*end) {
        end++;
        /* Accept an optional "iB" or "B" after the unit letter. */
        if ((end[0] == 'i' || end[0] == 'I') && (end[1] == 'B' || end[1] == 'b'))
            end += 2;
        else if (end[0] == 'B' || end[0] == 'b')
            end++;
    }
    if (*end || value == 0 || value > (UINT64_MAX >> shift))
        return -EINVAL;
    *bytes = (uint64_t)value << shift;
    return 0;
}
