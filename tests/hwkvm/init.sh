#!/bin/busybox sh
# /init of the hwkvm initramfs (built by tests/hwkvm/run.sh): loads KVM for AMD SVM inside
# QEMU, checks /dev/kvm, runs every scenario of /scenarios.txt with /astra-vmm and prints
# machine-readable markers that run.sh parses:
#   HWKVM-BOOT ...            /init started
#   HWKVM-FATAL <reason>      setup failed (no scenario was run); followed by power-off
#   HWKVM-KVM ok ...          /dev/kvm is usable
#   HWKVM-SMOKE exit=<c> PASS|FAIL          optional pre-check binary (/kvm-smoke)
#   HWKVM-RESULT name=<n> exit=<code> expected=<e> output_ok=<0|1> PASS|FAIL
#   HWKVM-DONE passed=N failed=M
# Everything else (prefixed "hwkvm:") is for humans.

/bin/busybox mkdir -p /proc /sys /dev /tmp /bin /sbin
/bin/busybox --install -s /bin
export PATH=/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
[ -c /dev/console ] && exec </dev/console >/dev/console 2>&1

# Defaults; /hwkvm.conf (written by run.sh) overrides them.
SCENARIO_TIMEOUT=60
GUEST_TIMEOUT=30
KVM_AMD_ARGS=
[ -f /hwkvm.conf ] && . /hwkvm.conf
. /scenarios.sh

say() { echo "hwkvm: $*"; }
now_cs() { read -r up _ </proc/uptime; echo "${up%.*}${up#*.}"; } # uptime in 1/100 s
off() {
    sync
    poweroff -f
    sleep 5
    echo o >/proc/sysrq-trigger
}
fatal() {
    echo "HWKVM-FATAL $*"
    say "last kernel messages:"
    dmesg | tail -n 30 | sed 's/^/hwkvm: dmesg: /'
    off
}

echo # the firmware leaves the console mid-line
echo "HWKVM-BOOT kernel=$(uname -r) cpus=$(grep -c ^processor /proc/cpuinfo) uptime=$(cut -d' ' -f1 /proc/uptime)s"

grep -qw svm /proc/cpuinfo || fatal "the vCPU has no 'svm' flag (QEMU needs -cpu ...,+svm)"
grep -qw npt /proc/cpuinfo || say "warning: the vCPU has no 'npt' flag (no nested paging)"

for m in irqbypass kvm kvm-amd; do
    args=
    [ "$m" = kvm-amd ] && args=$KVM_AMD_ARGS
    # shellcheck disable=SC2086 # module parameters are word-split on purpose
    insmod "/modules/$m.ko" $args || fatal "insmod $m.ko failed"
done
dmesg | grep -iE 'kvm|svm|tsc|clocksource' | sed 's/^/hwkvm: dmesg: /'

i=0
while [ ! -c /dev/kvm ] && [ $i -lt 20 ]; do
    sleep 0.1
    i=$((i + 1))
done
[ -c /dev/kvm ] || fatal "/dev/kvm did not appear after loading kvm-amd"
param() { cat "/sys/module/kvm_amd/parameters/$1" 2>/dev/null || echo '?'; }
echo "HWKVM-KVM ok dev=$(ls -l /dev/kvm | awk '{print $5 $6}') nested=$(param nested) npt=$(param npt)"

if [ -x /kvm-smoke ]; then
    timeout -s KILL "$SCENARIO_TIMEOUT" /kvm-smoke >/tmp/smoke.out 2>&1 </dev/null
    code=$?
    sed 's/^/  kvm-smoke| /' /tmp/smoke.out | head -n 40
    if [ $code -eq 0 ]; then
        echo "HWKVM-SMOKE exit=$code PASS"
    else
        echo "HWKVM-SMOKE exit=$code FAIL"
        fatal "the KVM smoke test failed (exit $code): nested KVM does not work"
    fi
fi

for f in /astra-vmm /guest.elf /fs.tar /scenarios.txt; do
    [ -f "$f" ] || fatal "$f is missing from the initramfs"
done

passed=0
failed=0
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    hwkvm_parse_scenario "$line"
    case $? in
    0) ;;
    1) continue ;;
    *)
        # run.sh validates the file before booting, so this should not happen.
        echo "HWKVM-RESULT name=line$lineno exit=-1 expected=-1 output_ok=0 FAIL"
        say "scenarios.txt:$lineno: $SC_ERR"
        failed=$((failed + 1))
        continue
        ;;
    esac
    t0=$(now_cs)
    set -f
    # shellcheck disable=SC2086 # the arguments are split on whitespace by definition
    set -- $SC_ARGS
    set +f
    # Like the Rust tier: a guest timeout unless the scenario sets one, so that a hung guest
    # ends with the VMM's own timeout report; busybox timeout is the last resort.
    if [ -n "$GUEST_TIMEOUT" ] && ! hwkvm_has_timeout "$@"; then
        set -- --timeout "$GUEST_TIMEOUT" "$@"
    fi
    say "=== $SC_NAME: astra-vmm --kernel /guest.elf --rootfs /fs.tar $*${SC_SIG:+ (SIG$SC_SIG after ${SC_SIG_AFTER}s)}"
    rm -f /tmp/code /tmp/out /tmp/err
    # Streamed live (so a wedged run still shows how far it got), at most 60 lines of it
    # (and after those, any line that reports a failure or a panic),
    # while stdout and stderr are also kept apart in /tmp/out and /tmp/err: astra-vmm's
    # stdout goes through fd 3 to `tee /tmp/out`, its stderr through `tee /tmp/err`, and both
    # tees feed the live view.
    {
        {
            {
                # busybox timeout execs the program in its own pid: $! is astra-vmm's.
                timeout -s KILL "$SCENARIO_TIMEOUT" /astra-vmm --kernel /guest.elf \
                    --rootfs /fs.tar "$@" </dev/null &
                vmm=$!
                if [ -n "$SC_SIG" ]; then
                    # What the host terminal's Ctrl-C does (scenarios.txt: @SIG@SECS).
                    # A Ctrl-Z is followed by the shell's `fg` a second later.
                    (sleep "$SC_SIG_AFTER" && kill -"$SC_SIG" "$vmm" &&
                        if [ "$SC_SIG" = TSTP ]; then sleep 1 && kill -CONT "$vmm"; fi) \
                        2>/dev/null &
                fi
                wait "$vmm"
                echo $? >/tmp/code
            } 2>&1 1>&3 3>&- | tee /tmp/err
        } 3>&1 1>&2 | tee /tmp/out
    } 2>&1 | awk -v n="$SC_NAME" 'NR <= 60 || /FAIL|panic/ { print "  " n "| " $0; fflush() }'
    code=$(cat /tmp/code 2>/dev/null || echo -1)
    t1=$(now_cs)
    total=$(cat /tmp/out /tmp/err | wc -l)
    [ "$total" -gt 60 ] && say "  ($((total - 60)) more output lines not shown)"
    case "$SC_STREAM" in
    stdout) searched=/tmp/out ;;
    stderr) searched=/tmp/err ;;
    *) searched="/tmp/out /tmp/err" ;;
    esac
    output_ok=1
    # shellcheck disable=SC2086 # $searched is one or two file names
    if [ -n "$SC_OUT" ] && ! cat $searched | grep -qF -- "$SC_OUT"; then
        output_ok=0
        say "$SC_NAME: $SC_STREAM output does not contain '$SC_OUT'"
    fi
    [ $code -eq 137 ] && [ "$SC_EXIT" -ne 137 ] &&
        say "$SC_NAME: killed after ${SCENARIO_TIMEOUT}s (hwkvm per-scenario timeout)"
    say "$SC_NAME: took $(((t1 - t0) / 100)).$(printf %02d $(((t1 - t0) % 100)))s"
    if [ "$code" -eq "$SC_EXIT" ] && [ $output_ok -eq 1 ]; then
        verdict=PASS
        passed=$((passed + 1))
    else
        verdict=FAIL
        failed=$((failed + 1))
    fi
    echo "HWKVM-RESULT name=$SC_NAME exit=$code expected=$SC_EXIT output_ok=$output_ok $verdict"
done </scenarios.txt

echo "HWKVM-DONE passed=$passed failed=$failed"
off
