# Shared file mappings give their pages back: after /bin/shmap (fork, truncation, memfd,
# /dev/zero) and /bin/shmap --fill (a tmpfs filled through a mapping, SIGBUS) ran five
# more times, /tmp uses what it used after the first run. With `--memfree` (astra only:
# Linux's page cache keeps pages, so its MemFree says nothing), MemFree is also within
# 256 kB of what it was: no frame is lost (tests/tests/shared_mappings.rs).
. /share/sh/lib.sh
free_kb() {
    awk '$1 == "MemFree:" {print $2}' /proc/meminfo
}
tmp_used_kb() {
    df -k /tmp | awk 'NR == 2 {print $3}'
}
runs() {
    /bin/shmap >/dev/null 2>&1
    check shmap 0 "$?"
    /bin/shmap --fill >/dev/null 2>&1
    check fill 0 "$?"
}
runs
before=$(free_kb)
tmp_before=$(tmp_used_kb)
for i in 1 2 3 4 5; do
    runs
done
after=$(free_kb)
check tmp-used-read yes "$([ -n "$tmp_before" ] && echo yes)"
check tmp-back "$tmp_before" "$(tmp_used_kb)"
if [ "$1" = --memfree ]; then
    check memfree-read yes "$([ "${before:-0}" -gt 0 ] && [ "${after:-0}" -gt 0 ] && echo yes)"
    check frames-back yes "$([ $((before - after)) -lt 256 ] && echo yes || echo "lost $((before - after)) kB")"
fi
summary shmap-frames
