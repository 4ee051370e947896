# busybox sh as CI scripts use it: pipelines, substitutions, redirections, loops, exit
# statuses, background jobs, traps, signals. Self-checking: run the same on Linux.
. /share/sh/lib.sh
W=$(mktemp -d)
cd "$W" || exit 2

check pipeline-3 "3 2 1" "$(printf '1\n2\n3\n' | sort -rn | tr '\n' ' ' | sed 's/ $//')"
check pipeline-5 "      2 b" "$(printf 'a\nb\nc\nb\n' | sort | uniq -c | sort -rn | head -1)"
check command-subst "x-y-z" "$(echo "$(echo x)-$(echo y)-$(echo z)")"
check nested-subst "3" "$(echo $(( $(echo 1) + $(echo 2) )))"
echo one > f; echo two >> f; cat < f > g
check redirect "one two" "$(cat g | tr '\n' ' ' | sed 's/ $//')"
check stderr-redirect "err" "$(sh -c 'echo err >&2' 2>&1)"
check dev-null "" "$(echo gone > /dev/null)"
n=0; for i in 1 2 3 4 5; do n=$((n + i)); done
check for-loop "15" "$n"
i=0; while [ $i -lt 10 ]; do i=$((i + 1)); done
check while-loop "10" "$i"
check while-read "[a][b]" "$(printf 'a\nb\n' | while read l; do printf '[%s]' "$l"; done)"
sh -c 'exit 7'; check exit-status "7" "$?"
(exit 3); check subshell-exit "3" "$?"
false | true; check pipe-status "0" "$?"
check and-or "yes" "$(false && echo no || echo yes)"
check xargs "1 2|3 4|5" "$(seq 5 | xargs -n 2 echo | tr '\n' '|' | sed 's/|$//')"
mkdir -p t/a t/b; touch t/a/x t/b/x t/a/y
check find-sort-uniq "2 x,1 y" "$(find t -type f | sed 's|.*/||' | sort | uniq -c | awk '{printf "%s%s %s", s, $1, $2; s=","}')"
timeout 1 sleep 10; check timeout "143" "$?"
timeout 5 true; check timeout-ok "0" "$?"
sleep 0.1 & p=$!; wait $p; check background-wait "0" "$?"
(sleep 0.2; exit 4) & p=$!; wait $p; check background-status "4" "$?"
for k in 1 2 3 4 5; do (exit $k) & done; wait
check wait-all "0" "$?"
sleep 10 & p=$!; kill $p; wait $p; check kill-background "143" "$?"
check trap-exit "body trapped" "$(sh -c 'trap "echo trapped" EXIT; echo body' | tr '\n' ' ' | sed 's/ $//')"
check trap-signal "got USR1" "$(sh -c 'trap "echo got USR1" USR1; kill -USR1 $$; true')"
check kill-self "137" "$(sh -c 'kill -9 $$'; echo $?)"
check sigpipe "141" "$( { (yes; echo $? >&3) | head -1 > /dev/null; } 3>&1 )"
check stop-continue "resumed 0" "$( { sh -c 'kill -STOP $$; echo resumed' & p=$!; sleep 0.3; kill -CONT $p; wait $p; echo $?; } | tr '\n' ' ' | sed 's/ $//')"
check exec "replaced" "$(sh -c 'exec echo replaced; echo not')"
check script-shebang "from script" "$(printf '#!/bin/busybox sh\necho from script\n' > s.sh; chmod +x s.sh; ./s.sh)"
check noexec "126" "$(printf 'echo x\n' > n.sh; chmod -x n.sh; ./n.sh 2>/dev/null; echo $?)"
check notfound "127" "$(no-such-command-here 2>/dev/null; echo $?)"
check getppid "yes" "$(p=$$; sh -c "[ \$PPID = $p ] && echo yes || echo no")"
check heredoc "6" "$(cat <<EOT | wc -c
hello
EOT
)"
check arithmetic "42" "$(( 6 * 7 ))"
check case "two" "$(x=2; case $x in 1) echo one;; 2) echo two;; esac)"
check function "f:a:b" "$(f() { echo "f:$1:$2"; }; f a b)"
check many-children "50" "$(i=0; while [ $i -lt 50 ]; do sh -c true; i=$((i + 1)); done; echo $i)"
cd /
rm -rf "$W"
summary shell
