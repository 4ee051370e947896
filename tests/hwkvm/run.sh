#!/usr/bin/env bash
# Runs the astra scenarios (tests/scenarios.txt) on a /dev/kvm with hardware (AMD SVM)
# semantics: QEMU TCG with nested SVM boots Debian's cloud kernel with a busybox initramfs
# whose /init (tests/hwkvm/init.sh) loads kvm-amd and runs astra-vmm once per scenario.
# See tests/hwkvm/README.md. The last line printed is always "hwkvm: N passed, M failed".
#
# Environment overrides:
#   ASTRA_VMM     static astra-vmm binary  (target/x86_64-unknown-linux-musl/release/astra-vmm)
#   ASTRA_KERNEL  guest kernel ELF         (build/guest.elf)
#   ASTRA_ROOTFS  root filesystem TAR      (build/fs.tar)
#   SCENARIOS     scenario file            (tests/scenarios.txt)
#   HWKVM_SMOKE   optional static binary run first inside; must exit 0 (a KVM sanity check)
#                 (default: target/x86_64-unknown-linux-musl/release/kvm-floor if it exists;
#                 set to "none" to skip)
#   HWKVM_TIMEOUT           hard limit for the whole QEMU run, seconds (300)
#   HWKVM_SCENARIO_TIMEOUT  limit per astra-vmm run inside (busybox timeout -s KILL), seconds (60)
#   HWKVM_GUEST_TIMEOUT     astra-vmm --timeout added to scenarios that set none (30; "none": don't)
#   HWKVM_CPU               QEMU -cpu (qemu64,+svm,+npt)
#   HWKVM_KVM_AMD_ARGS      kvm-amd module parameters (none)
#   HWKVM_KERNEL_PKG        Debian kernel package (default: what linux-image-cloud-amd64 pulls in)
#   HWKVM_DIR               work/cache directory (build/hwkvm)
#   HWKVM_QEMU_ARGS         extra QEMU arguments, split on whitespace (tests/hwkvm/gdb.sh adds a
#                           second serial port for gdb)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$ROOT/tests/hwkvm
cd "$ROOT"

ASTRA_VMM=${ASTRA_VMM:-target/x86_64-unknown-linux-musl/release/astra-vmm}
ASTRA_KERNEL=${ASTRA_KERNEL:-build/guest.elf}
ASTRA_ROOTFS=${ASTRA_ROOTFS:-build/fs.tar}
SCENARIOS=${SCENARIOS:-tests/scenarios.txt}
HWKVM_SMOKE=${HWKVM_SMOKE:-target/x86_64-unknown-linux-musl/release/kvm-floor}
HWKVM_TIMEOUT=${HWKVM_TIMEOUT:-300}
HWKVM_SCENARIO_TIMEOUT=${HWKVM_SCENARIO_TIMEOUT:-60}
HWKVM_GUEST_TIMEOUT=${HWKVM_GUEST_TIMEOUT:-30}
[ "$HWKVM_GUEST_TIMEOUT" != none ] || HWKVM_GUEST_TIMEOUT=
HWKVM_CPU=${HWKVM_CPU:-qemu64,+svm,+npt}
HWKVM_KVM_AMD_ARGS=${HWKVM_KVM_AMD_ARGS:-}
HWKVM_DIR=${HWKVM_DIR:-build/hwkvm}
HWKVM_QEMU_ARGS=${HWKVM_QEMU_ARGS:-}
LOG=$HWKVM_DIR/console.log

log() { echo "hwkvm: $*"; }

# Number of scenarios in the file (set once it has been validated); failures before the
# run count every scenario as failed.
SCENARIO_NAMES=()
FINISHED=
finish() { # finish PASSED FAILED [REASON]
    FINISHED=1
    if [ -n "${3:-}" ]; then
        echo "hwkvm: FAILED: $3" >&2
    fi
    echo "hwkvm: $1 passed, $2 failed"
    if [ "$2" -eq 0 ] && [ -z "${3:-}" ]; then exit 0; fi
    exit 1
}
die() { finish 0 "${#SCENARIO_NAMES[@]}" "$*"; }
ERR_LINE=?
trap 'ERR_LINE=$LINENO' ERR
trap 'rc=$?; if [ -z "$FINISHED" ]; then
    echo "hwkvm: FAILED: unexpected error (exit $rc) at run.sh line $ERR_LINE" >&2
    echo "hwkvm: 0 passed, ${#SCENARIO_NAMES[@]} failed"; fi' EXIT

# --- scenarios ------------------------------------------------------------------------
# shellcheck source=tests/hwkvm/scenarios.sh
. "$HERE/scenarios.sh"
[ -f "$SCENARIOS" ] || die "scenario file $SCENARIOS not found"
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
    lineno=$((lineno + 1))
    rc=0
    hwkvm_parse_scenario "$line" || rc=$?
    case $rc in
    0) ;;
    1) continue ;;
    *) die "$SCENARIOS:$lineno: $SC_ERR" ;;
    esac
    for n in "${SCENARIO_NAMES[@]}"; do
        [ "$n" != "$SC_NAME" ] || die "$SCENARIOS:$lineno: duplicate scenario name '$SC_NAME'"
    done
    SCENARIO_NAMES+=("$SC_NAME")
done <"$SCENARIOS"
[ ${#SCENARIO_NAMES[@]} -gt 0 ] || die "$SCENARIOS contains no scenario"
log "${#SCENARIO_NAMES[@]} scenarios from $SCENARIOS: ${SCENARIO_NAMES[*]}"

# --- inputs -----------------------------------------------------------------------------
for f in "$ASTRA_VMM" "$ASTRA_KERNEL" "$ASTRA_ROOTFS"; do
    [ -f "$f" ] || die "$f not found (build it first: make all, and cargo build --release -p astra-vmm --target x86_64-unknown-linux-musl)"
done
is_dynamic() { LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'Requesting program interpreter'; }
if command -v readelf >/dev/null; then
    is_dynamic "$ASTRA_VMM" && die "$ASTRA_VMM is dynamically linked; the initramfs has no libc: build it for x86_64-unknown-linux-musl"
fi
case "$HWKVM_SMOKE" in
none | '') HWKVM_SMOKE= ;;
*)
    if [ ! -f "$HWKVM_SMOKE" ]; then
        HWKVM_SMOKE=
    elif command -v readelf >/dev/null && is_dynamic "$HWKVM_SMOKE"; then
        die "HWKVM_SMOKE=$HWKVM_SMOKE is dynamically linked"
    fi
    ;;
esac

# --- host tools -------------------------------------------------------------------------
APT_UPDATED=
apt_install() {
    command -v apt-get >/dev/null || die "missing $*, and no apt-get to install it: install $* by hand"
    local sudo=
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    log "installing $*"
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"; then
        [ -z "$APT_UPDATED" ] || die "apt-get install $* failed"
        log "apt-get install failed, running apt-get update first"
        $sudo apt-get update -q || die "apt-get update failed"
        APT_UPDATED=1
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@" ||
            die "apt-get install $* failed"
    fi
}
busybox_static() {
    [ -x /bin/busybox ] && ! is_dynamic /bin/busybox && dpkg -s busybox-static >/dev/null 2>&1
}
missing=()
command -v qemu-system-x86_64 >/dev/null || missing+=(qemu-system-x86)
command -v cpio >/dev/null || missing+=(cpio)
busybox_static || missing+=(busybox-static)
command -v dpkg-deb >/dev/null || die "dpkg-deb is required (Debian/Ubuntu host)"
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
busybox_static || die "/bin/busybox is not the static busybox (package busybox-static)"

# --- Debian cloud kernel (cached) -------------------------------------------------------
KDIR=$HWKVM_DIR/kernel
mkdir -p "$HWKVM_DIR/debs"
apt_download() { # apt_download PKG: into $HWKVM_DIR/debs
    (cd "$HWKVM_DIR/debs" && apt-get download -q "$1") && return 0
    if [ -z "$APT_UPDATED" ]; then
        log "apt-get download $1 failed, running apt-get update first"
        local sudo=
        [ "$(id -u)" -eq 0 ] || sudo=sudo
        $sudo apt-get update -q || die "apt-get update failed"
        APT_UPDATED=1
        (cd "$HWKVM_DIR/debs" && apt-get download -q "$1") && return 0
    fi
    die "apt-get download $1 failed"
}
if [ ! -f "$KDIR/.complete" ]; then
    command -v apt-get >/dev/null || die "apt-get is needed to fetch the Debian cloud kernel"
    pkg=${HWKVM_KERNEL_PKG:-}
    if [ -z "$pkg" ]; then
        log "downloading linux-image-cloud-amd64"
        rm -f "$HWKVM_DIR"/debs/linux-image-cloud-amd64_*.deb
        apt_download linux-image-cloud-amd64
        meta=$(ls "$HWKVM_DIR"/debs/linux-image-cloud-amd64_*.deb)
        pkg=$(dpkg-deb -f "$meta" Depends | tr ',' '\n' | grep -o 'linux-image-[0-9][^ ]*-cloud-amd64' | head -n 1) ||
            die "cannot find the versioned kernel package in the Depends of $meta"
    fi
    log "downloading $pkg"
    rm -f "$HWKVM_DIR/debs/${pkg}"_*.deb
    apt_download "$pkg"
    deb=$(ls "$HWKVM_DIR/debs/${pkg}"_*.deb)
    rm -rf "$KDIR"
    mkdir -p "$KDIR"
    log "unpacking $deb"
    dpkg-deb -x "$deb" "$KDIR"
    touch "$KDIR/.complete"
else
    log "using the cached kernel in $KDIR"
fi
shopt -s nullglob
vmlinuz=("$KDIR"/boot/vmlinuz-*)
VMLINUZ=${vmlinuz[0]:-}
[ -n "$VMLINUZ" ] || die "no boot/vmlinuz-* in $KDIR (remove $KDIR to download it again)"
KVER=${VMLINUZ##*/vmlinuz-}
MODDIR=$KDIR/lib/modules/$KVER
[ -d "$MODDIR" ] || die "no $MODDIR (remove $KDIR to download it again)"

# --- initramfs --------------------------------------------------------------------------
INITRD_DIR=$HWKVM_DIR/initramfs
INITRD=$HWKVM_DIR/initramfs.cpio.gz
rm -rf "$INITRD_DIR"
mkdir -p "$INITRD_DIR"/{bin,sbin,dev,proc,sys,tmp,modules}
cp /bin/busybox "$INITRD_DIR/bin/busybox"
install -m 0755 "$HERE/init.sh" "$INITRD_DIR/init"
cp "$HERE/scenarios.sh" "$INITRD_DIR/scenarios.sh"
for m in irqbypass kvm kvm-amd; do
    f=$(find "$MODDIR/kernel" \( -name "$m.ko" -o -name "$m.ko.xz" -o -name "$m.ko.zst" -o -name "$m.ko.gz" \) | head -n 1)
    [ -n "$f" ] || die "module $m not found under $MODDIR/kernel"
    case "$f" in
    *.ko) cp "$f" "$INITRD_DIR/modules/$m.ko" ;;
    *.xz) xz -dc "$f" >"$INITRD_DIR/modules/$m.ko" ;;
    *.zst) zstd -dcq "$f" >"$INITRD_DIR/modules/$m.ko" ;;
    *.gz) gzip -dc "$f" >"$INITRD_DIR/modules/$m.ko" ;;
    esac
done
install -m 0755 "$ASTRA_VMM" "$INITRD_DIR/astra-vmm"
cp "$ASTRA_KERNEL" "$INITRD_DIR/guest.elf"
cp "$ASTRA_ROOTFS" "$INITRD_DIR/fs.tar"
cp "$SCENARIOS" "$INITRD_DIR/scenarios.txt"
[ -z "$HWKVM_SMOKE" ] || install -m 0755 "$HWKVM_SMOKE" "$INITRD_DIR/kvm-smoke"
cat >"$INITRD_DIR/hwkvm.conf" <<EOF
SCENARIO_TIMEOUT=$HWKVM_SCENARIO_TIMEOUT
GUEST_TIMEOUT=$HWKVM_GUEST_TIMEOUT
KVM_AMD_ARGS="$HWKVM_KVM_AMD_ARGS"
EOF
(cd "$INITRD_DIR" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -1 >"$INITRD"
log "initramfs $INITRD ($(du -h "$INITRD" | cut -f1)), kernel $VMLINUZ${HWKVM_SMOKE:+, smoke test $HWKVM_SMOKE}"

# --- run --------------------------------------------------------------------------------
log "booting QEMU (TCG, nested SVM), timeout ${HWKVM_TIMEOUT}s, console in $LOG"
start=$(date +%s%N)
set +e
# thread=single: with multi-threaded TCG (the default for -smp 2), about one QEMU boot in
# ten wedged here: both L1 vCPUs idle in HLT with their timer interrupts lost (the inner
# VMM's own --timeout never fired), or looping in NMI entry. 280 scenario runs in a row
# with single-threaded TCG had no hang, and it was also faster on a 2-core host.
# shellcheck disable=SC2086 # HWKVM_QEMU_ARGS is split on whitespace on purpose
timeout --foreground -k 10 "$HWKVM_TIMEOUT" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu "$HWKVM_CPU" -M pc -m 2G -smp 2 -nic none -nographic -no-reboot \
    -kernel "$VMLINUZ" -initrd "$INITRD" $HWKVM_QEMU_ARGS \
    -append "console=ttyS0 panic=-1 quiet loglevel=4 tsc=reliable" </dev/null 2>&1 |
    sed -u -e 's/\r//g' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' -e 's/\x1b[A-Za-z]//g' | tee "$LOG"
qemu_rc=${PIPESTATUS[0]}
set -e
ms=$((($(date +%s%N) - start) / 1000000))
elapsed=$((ms / 1000)).$(printf %03d $((ms % 1000)))
log "QEMU exited with $qemu_rc after ${elapsed}s"

# --- verdict ----------------------------------------------------------------------------
timed_out=
[ "$qemu_rc" -ne 124 ] && [ "$qemu_rc" -ne 137 ] || timed_out=1
if ! grep -q '^HWKVM-BOOT' "$LOG"; then
    [ -z "$timed_out" ] || die "QEMU timed out after ${HWKVM_TIMEOUT}s before /init ran; see $LOG"
    [ "$qemu_rc" -eq 0 ] || die "QEMU failed (exit $qemu_rc) before /init ran; see $LOG"
    die "QEMU stopped before /init ran; see $LOG"
fi
if grep -q '^HWKVM-FATAL' "$LOG"; then
    die "$(grep -m1 '^HWKVM-FATAL' "$LOG" | sed 's/^HWKVM-FATAL //'); see $LOG"
fi
if ! grep -q '^HWKVM-KVM ok' "$LOG"; then
    [ -z "$timed_out" ] || die "QEMU timed out after ${HWKVM_TIMEOUT}s before /dev/kvm was ready; see $LOG"
    die "/init did not report a working /dev/kvm (QEMU exit $qemu_rc); see $LOG"
fi
passed=0
failed=0
for n in "${SCENARIO_NAMES[@]}"; do
    r=$(grep -F "HWKVM-RESULT name=$n " "$LOG" | grep '^HWKVM-RESULT' | tail -n 1 || true)
    case "$r" in
    *' PASS') passed=$((passed + 1)) ;;
    '')
        failed=$((failed + 1))
        echo "hwkvm: scenario $n: no result (did not run or did not finish)" >&2
        ;;
    *)
        failed=$((failed + 1))
        echo "hwkvm: scenario $n: FAIL (${r#HWKVM-RESULT })" >&2
        ;;
    esac
done
done_line=$(grep -m1 '^HWKVM-DONE' "$LOG" || true)
reason=
if [ -n "$timed_out" ]; then
    reason="QEMU timed out after ${HWKVM_TIMEOUT}s"
elif [ -z "$done_line" ]; then
    reason="no HWKVM-DONE marker: the run did not finish (QEMU exit $qemu_rc)"
elif [ "$done_line" != "HWKVM-DONE passed=$passed failed=$failed" ]; then
    reason="inconsistent results: guest says '$done_line', host counted passed=$passed failed=$failed"
elif [ "$qemu_rc" -ne 0 ]; then
    reason="QEMU exited with $qemu_rc"
fi
[ "$failed" -eq 0 ] || [ -n "$reason" ] || reason="$failed scenario(s) failed"
[ -z "$reason" ] || reason="$reason; see $LOG"
finish "$passed" "$failed" "$reason"
