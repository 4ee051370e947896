# Ctrl-C from the host terminal (tests/scenarios.txt sends astra-vmm SIGINT): the guest's
# foreground process group gets SIGINT; this shell traps it after its child dies of it.
# With "ignore" it ignores SIGINT and runs to its end instead.
if [ "$1" = suspend ]; then
    # Ctrl-Z (SIGTSTP) with no job control here: astra-vmm itself is suspended, as the
    # host shell expects, and resumed (SIGCONT); this shell never sees it.
    trap 'echo "ctrl-c: got SIGTSTP"; exit 1' TSTP
    sleep 2
    echo "ctrl-c: resumed"
    exit 0
fi
if [ "$1" = ignore ]; then
    trap '' INT
    i=0
    while [ $i -lt 40 ]; do sleep 0.1; i=$((i + 1)); done
    echo "ctrl-c: ignored, ran to the end"
    exit 0
fi
trap 'echo "ctrl-c: caught SIGINT"; exit 7' INT
while :; do sleep 0.1; done
