# FIFOs made by mkfifo, opened by two processes. Self-checking: run the same on Linux.
. /share/sh/lib.sh
W=$(mktemp -d)
cd "$W" || exit 2
mkfifo f
check mkfifo "yes" "$(test -p f && echo yes)"
check mode "prw-r--r--" "$(stat -c %A f)"
(echo hello > f) &
check reader-meets-writer "hello" "$(cat f)"
wait
# The writer opens first and waits for a reader.
(printf 'a\nb\n' > f; echo done > g) &
sleep 0.2
check writer-waits "no" "$(test -e g && echo yes || echo no)"
check lines "2" "$(wc -l < f | tr -d ' ')"
wait
check writer-done "done" "$(cat g)"
# O_RDWR never waits.
exec 3<>f
echo x >&3
read -r line <&3
exec 3>&-
check rdwr "x" "$line"
seq 2000 > f &
check stream "2001000" "$(awk '{s += $1} END {print s}' < f)"
wait
check size "0" "$(stat -c %s f)"
rm f g
check rm "" "$(ls)"
cd /
rm -rf "$W"
summary fifo
