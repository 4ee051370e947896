#!/usr/bin/env bash
# The gdb tests on hardware-style KVM (QEMU TCG + nested SVM, see README.md here): stock gdb
# on the host debugs the astra-vmm that runs inside the L1. gdb is not in the L1's busybox
# initramfs (it would need Python and a dozen libraries, and would run emulated); instead
# the inner astra-vmm speaks gdb's protocol over the L1's second serial port
# (`--gdb /dev/ttyS1`), which QEMU connects to a unix socket on the host. run.sh runs the
# scenarios of gdb-scenarios.txt with the gdb image (build/gdb.tar, `make gdb-image`)
# while this script runs one gdb session per scenario, in order, as each inner VMM starts
# waiting. A scenario passes when the program's output and status are what the session
# made them; a session passes when gdb printed what it should. Last line:
# "hwkvm-gdb: N passed, M failed".
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
HWKVM_DIR=${HWKVM_DIR:-build/hwkvm}
OUT=$HWKVM_DIR/gdb
LOG=$HWKVM_DIR/console.log
SOCK=$OUT/serial.sock
STD=target/gdb-apps/x86_64-unknown-linux-musl/release/gdbtarget
CPROG=target/gdb-apps/c/gdbtarget-c
KSYMS=build/guest.debug.elf
SESSION_TIMEOUT=${HWKVM_GDB_SESSION_TIMEOUT:-240}
for f in "$STD" "$CPROG" "$KSYMS" build/gdb.tar; do
    [ -f "$f" ] || { echo "hwkvm-gdb: $f is missing: run make all gdb-image" >&2; exit 1; }
done
command -v gdb >/dev/null || { echo "hwkvm-gdb: gdb is missing: run make gdb-tools" >&2; exit 1; }
mkdir -p "$OUT"
rm -f "$SOCK" "$OUT"/*.out "$LOG" # a stale console log would look like waiting VMMs
dispatch=0x$(nm -C "$KSYMS" | awk '$3 == "astra_kernel::syscall::dispatch" { a = $1 } END { print a }')

# wait_for_vmm N: until the N-th inner astra-vmm waits for gdb (or QEMU is gone).
wait_for_vmm() {
    while :; do
        n=$(grep -c 'waiting for gdb on /dev/ttyS1' "$LOG" 2>/dev/null || true)
        [ "${n:-0}" -ge "$1" ] && return 0
        kill -0 "$RUN_PID" 2>/dev/null || return 1
        sleep 0.5
    done
}

# session NAME SYMBOLS INTERRUPT_AFTER CMD...: one gdb -batch session against the socket.
session() {
    local name=$1 symbols=$2 interrupt=$3
    shift 3
    local args=(-batch -nx)
    [ -z "$symbols" ] || args+=("$symbols")
    args+=(-ex 'set remotetimeout 60' -ex "target remote $SOCK")
    for c in "$@"; do args+=(-ex "$c"); done
    # --foreground: GNU timeout otherwise forwards a signal it gets both to gdb and to its
    # own process group, so gdb would see the Ctrl-C below twice, and a second SIGINT
    # while it waits for the stop makes it give up on the target ("The target is not
    # responding to interrupt requests"): the flake this tier used to retry.
    timeout --foreground -k 5 "$SESSION_TIMEOUT" gdb "${args[@]}" >"$OUT/$name.out" 2>&1 &
    local pid=$!
    if [ -n "$interrupt" ]; then
        sleep "$interrupt"
        kill -INT "$pid" 2>/dev/null || true
    fi
    wait "$pid" || true
}

# expect NAME TEXT...: the session's output has every TEXT.
passed=0
failed=0
expect() {
    local name=$1 ok=1
    shift
    for t in "$@"; do
        grep -qF -- "$t" "$OUT/$name.out" || { echo "hwkvm-gdb: $name: gdb output lacks '$t'" >&2; ok=0; }
    done
    if [ $ok = 1 ]; then
        passed=$((passed + 1))
        echo "hwkvm-gdb: session $name PASS"
    else
        failed=$((failed + 1))
        echo "hwkvm-gdb: session $name FAIL; its output:" >&2
        sed 's/^/    /' "$OUT/$name.out" >&2
    fi
}

SCENARIOS=tests/hwkvm/gdb-scenarios.txt ASTRA_ROOTFS=build/gdb.tar \
    HWKVM_SCENARIO_TIMEOUT=${HWKVM_SCENARIO_TIMEOUT:-300} HWKVM_GUEST_TIMEOUT=240 \
    HWKVM_TIMEOUT=${HWKVM_TIMEOUT:-1500} HWKVM_SMOKE=none \
    HWKVM_QEMU_ARGS="-serial mon:stdio -chardev socket,id=gdbserial,path=$SOCK,server=on,wait=off -device isa-serial,chardev=gdbserial,index=1" \
    tests/hwkvm/run.sh >"$OUT/run.log" 2>&1 &
RUN_PID=$!

if wait_for_vmm 1; then
    session kernel "$KSYMS" "" "break *$dispatch" continue bt stepi stepi stepi \
        'info registers rip' delete continue
fi
expect kernel "Breakpoint 1, astra_kernel::syscall::dispatch" "in astra_kernel::trap::handle" \
    "<astra_kernel::syscall::dispatch+" "exited with code 03"
if wait_for_vmm 2; then
    session std "" "" "add-symbol-file $STD -o 0x555555554000" 'break gdbtarget::main' continue \
        'print gdbtarget::COUNTER.v.value' 'watch -l gdbtarget::COUNTER.v.value' \
        'break gdbtarget::bump' continue 'print n' 'set $rdi = 100' continue delete finish continue
fi
expect std "\$1 = 0" "gdbtarget::bump (n=41)" "Old value = 0" "New value = 100" \
    "Value returned is \$3 = 100" "exited with code 03"
if wait_for_vmm 3; then
    # The debug registers fire on this platform: a hardware breakpoint too.
    session c "$CPROG" "" 'break main' continue 'info locals' 'print counter' 'hbreak bump' \
        continue 'watch counter' continue delete finish 'set $rax = 77' detach
fi
expect c "Breakpoint 1, main ()" "start = 41" "Hardware assisted breakpoint 2 at" \
    "Breakpoint 2, bump (n=n@entry=41)" "Old value = 0" "New value = 41" \
    "Value returned is \$2 = 41" "detached"
if wait_for_vmm 4; then
    session sigint "" 20 "add-symbol-file $STD -o 0x555555554000" continue 'bt 1' \
        'set var gdbtarget::STOP = 1' continue
fi
# The stop may land in the kernel on its way back to the loop (see tests/tests/gdb.rs).
expect sigint "received signal SIGINT" "exited with code 03"
if wait_for_vmm 5; then
    session threads "" "" "add-symbol-file $STD -o 0x555555554000" 'break gdbtarget::bump' \
        continue 'info threads' 'thread apply all bt 30' 'thread 3' 'bt 3' delete continue
fi
expect threads "Thread 1.1 (pid 1, on the CPU)" "Thread 1.2 (pid 1)" "Thread 1.3 (pid 1)" \
    "std::sync::barrier::Barrier::wait" "[Switching to thread 3 (Thread 1.2)]" \
    "in std::sys::pal::unix::futex::futex_wait" "exited with code 03"

wait "$RUN_PID" && run_rc=0 || run_rc=$?
cat "$OUT/run.log"
summary=$(tail -n 1 "$OUT/run.log")
echo "hwkvm-gdb: sessions: $passed passed, $failed failed; scenarios: ${summary#hwkvm: }"
[ "$failed" -eq 0 ] && [ "$run_rc" -eq 0 ] || { echo "hwkvm-gdb: $passed passed, $((failed + 1)) failed"; exit 1; }
echo "hwkvm-gdb: $((passed + 1)) passed, 0 failed"
