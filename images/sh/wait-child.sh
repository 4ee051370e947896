# A shell waits for a child that sleeps: under --strace, its wait (rt_sigsuspend) is
# <unfinished ...> while the child's calls are shown, then <... rt_sigsuspend resumed>.
/bin/busybox sleep 0.3 &
wait $!
echo "waited: $?"
