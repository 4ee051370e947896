# Shared by the busybox check scripts: `check NAME EXPECTED ACTUAL` prints PASS or FAIL,
# `summary NAME` prints the total and sets the exit status. Applets are run through their
# links in /opt/busybox/bin (PATH), as a Debian system with busybox-static would.
PATH=/opt/busybox/bin:/bin
export PATH
passed=0
failed=0
check() {
    if [ "$2" = "$3" ]; then
        passed=$((passed + 1))
        echo "PASS $1"
    else
        failed=$((failed + 1))
        echo "FAIL $1: expected [$2], got [$3]"
    fi
}
summary() {
    if [ "$failed" -eq 0 ]; then
        echo "$1: all $passed checks passed"
        exit 0
    fi
    echo "$1: $failed of $((passed + failed)) checks failed"
    exit 1
}
