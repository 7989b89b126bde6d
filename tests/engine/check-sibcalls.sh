#!/bin/sh
# Every engine handler must end in a jump to the next record's handler
# ('return (i + 1)->fn(c, i + 1)' compiled as a sibling call). A call
# through offset 0x20 (the next record's fn) means gcc did not, and the
# host stack would grow with each instruction of a block.
# Usage: check-sibcalls.sh DIR-WITH-ENGINE-OBJECTS
set -eu
dir=${1:?usage: check-sibcalls.sh OBJDIR}
bad=$(for f in "$dir"/*.o; do
    objdump -d --no-show-raw-insn "$f" |
    awk -v F="$(basename "$f")" '/^[0-9a-f]+ </{fn=$2} /call +\*0x20\(/{print F, fn}'
done)
jumps=$(for f in "$dir"/*.o; do objdump -d --no-show-raw-insn "$f"; done | grep -c 'jmp \+\*' || true)
if [ -n "$bad" ]; then
    echo "FAIL: handlers that call the next record instead of jumping:"
    echo "$bad"
    exit 1
fi
echo "sibcalls: ok ($jumps indirect jumps, no calls through the next record)"
