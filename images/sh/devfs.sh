# /dev beyond null and zero: /dev/full, and the links a Debian system's udev makes (fd,
# stdin, stdout, stderr) through /proc/self/fd, whose links reach the open file itself,
# pipes included. Self-checking: the Linux tier runs the same script (its /dev has the
# same devices and links).
. /share/sh/lib.sh
W=$(mktemp -d)
cd "$W" || exit 2
check dev-entries "5" "$(ls /dev | grep -c -x -e fd -e full -e stdin -e stdout -e stderr)"
check full-write "1" "$(echo x 2>/dev/null > /dev/full; echo $?)"
check full-reads-zeros " 00 00 00 00" "$(head -c 4 /dev/full | od -An -tx1)"
check full-type "character special file 1:7" "$(stat -c '%F %t:%T' /dev/full)"
check stdin-link "/proc/self/fd/0" "$(readlink /dev/stdin)"
check stdout-link "/proc/self/fd/1" "$(readlink /dev/stdout)"
check stderr-link "/proc/self/fd/2" "$(readlink /dev/stderr)"
check fd-link "/proc/self/fd" "$(readlink /dev/fd)"
# Through the links to a pipe: the same pipe, opened again.
check cat-stdin-pipe "piped" "$(echo piped | cat /dev/stdin)"
check cat-dev-fd "via fd" "$(echo via fd | cat /dev/fd/0)"
check stdin-pipe-type "fifo" "$(echo | stat -L -c %F /dev/stdin)"
check stdin-null-type "character special file" "$(stat -L -c %F /dev/stdin < /dev/null)"
check stdout-pipe "out" "$(echo out > /dev/stdout)"
check stderr-pipe "err" "$(echo err 2>&1 > /dev/stderr)"
# The writer has gone: what it wrote is still read, then the end.
check pipe-after-writer "early" "$(echo early | (sleep 0.2; cat /proc/self/fd/0))"
# A regular file through /proc/self/fd: opened again, truncated by `>`.
exec 3> f
echo first >&3
echo second > /proc/self/fd/3
exec 3>&-
check reopen-file "second" "$(cat f)"
# The links' permission bits say how each descriptor is open, as Linux's do.
exec 4< f 5> g 6<> h
check link-modes "lr-x------ l-wx------ lrwx------" \
    "$(stat -c %A /proc/$$/fd/4) $(stat -c %A /proc/$$/fd/5) $(stat -c %A /proc/$$/fd/6)"
check link-target "$W/f" "$(readlink /proc/$$/fd/4)"
mkdir -p sub/deeper
ln -s sub/deeper lnk
exec 7> lnk/x
check link-through-symlink "$W/sub/deeper/x" "$(readlink /proc/$$/fd/7)"
rm f
check link-deleted "$W/f (deleted)" "$(readlink /proc/$$/fd/4)"
check read-deleted "second" "$(cat /proc/$$/fd/4)"
exec 4<&- 5>&- 6<&- 7>&-
# A pipe's link names it, and stat follows it to the pipe.
check pipe-link "pipe:[" "$(echo | readlink /proc/self/fd/0 | cut -c1-6)"
check pipe-same-ino "same" "$(echo | (a=$(stat -L -c %i /proc/self/fd/0); b=$(stat -L -c %i /dev/stdin); [ "$a" = "$b" ] && echo same))"
cd /
rm -rf "$W"
summary devfs
