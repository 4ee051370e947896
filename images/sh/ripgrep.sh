# ripgrep (a real Rust program: `make ripgrep` builds the released crate for musl) over a tree
# this script writes at run time on the writable root's tmpfs. Self-checking: the Linux tier
# runs the same script in a chroot of the same image, so every expected line is Linux's.
. /share/sh/lib.sh
W=$(mktemp -d)
cd "$W" || exit 2
# A small project: sources in three languages, a git ignore file, a hidden file, a binary
# file, and 200 generated files two levels deep.
mkdir -p .git src/net src/fs docs target/debug
printf 'fn main() {\n    let needle = 1;\n    println!("{needle}");\n}\n' > src/main.rs
printf 'pub fn connect() {}\n// TODO: retry the needle\n' > src/net/tcp.rs
printf 'def needle():\n    return "Needle"\n' > src/fs/walk.py
printf '# Guide\n\nThe needle is here.\nNo match on this line.\n' > docs/guide.md
printf 'needle in a build artefact\n' > target/debug/out.rs
printf 'target/\n*.log\n' > .gitignore
printf 'needle in a log\n' > build.log
printf 'needle hidden\n' > .secret.rs
printf 'needle\0binary\n' > data.bin
i=0
while [ $i -lt 200 ]; do
    d=gen/d$((i % 10))
    mkdir -p $d
    if [ $((i % 7)) -eq 0 ]; then
        printf 'line one\nthe needle %d\nline three\n' $i > $d/f$i.txt
    else
        printf 'nothing to see %d\n' $i > $d/f$i.txt
    fi
    i=$((i + 1))
done
check version "ripgrep" "$(rg --version | head -n 1 | cut -d' ' -f1)"
# Ignore rules, hidden files and binary detection, sorted for a stable order.
check files-with-matches "docs/guide.md
gen/d0/f0.txt
gen/d0/f140.txt
gen/d0/f70.txt
gen/d1/f161.txt
gen/d1/f21.txt
gen/d1/f91.txt
gen/d2/f112.txt
gen/d2/f182.txt
gen/d2/f42.txt
gen/d3/f133.txt
gen/d3/f63.txt
gen/d4/f14.txt
gen/d4/f154.txt
gen/d4/f84.txt
gen/d5/f105.txt
gen/d5/f175.txt
gen/d5/f35.txt
gen/d6/f126.txt
gen/d6/f196.txt
gen/d6/f56.txt
gen/d7/f147.txt
gen/d7/f7.txt
gen/d7/f77.txt
gen/d8/f168.txt
gen/d8/f28.txt
gen/d8/f98.txt
gen/d9/f119.txt
gen/d9/f189.txt
gen/d9/f49.txt
src/fs/walk.py
src/main.rs
src/net/tcp.rs" "$(rg -l needle | sort)"
check count "33" "$(rg -l needle | wc -l | tr -d ' ')"
check hidden "yes" "$(rg -l --hidden needle | grep -qx .secret.rs && echo yes)"
check no-ignore "target/debug/out.rs" "$(rg -l --no-ignore needle target)"
# An ignored file is still searched when named.
check explicit-path "build.log" "$(rg -l needle build.log)"
check type-py "src/fs/walk.py:1:def needle():" "$(rg -n -t py --sort path needle)"
check ignore-case "src/fs/walk.py:1:def needle():
src/fs/walk.py:2:    return \"Needle\"" "$(rg -n -i needle src/fs)"
check word "docs/guide.md:3:The needle is here." "$(rg -n -w 'needle' docs)"
check invert "3" "$(rg -v -c needle docs/guide.md)"
check context "# Guide

The needle is here.
No match on this line." "$(rg --no-filename -C 2 'needle is' docs/guide.md)"
check replace "The pin is here." "$(rg -r pin needle docs/guide.md)"
check regex "src/main.rs:println!(\"{needle}\")" "$(rg -o --sort path 'println!\(.*\)' src)"
check count-matches "35" "$(rg --count-matches -i needle --no-filename | awk '{s += $1} END {print s}')"
check binary "binary file matches (found \"\\0\" byte around offset 6)" \
    "$(rg needle data.bin)"
# Every file rg would search (its directory walker, several threads), then a glob.
check files "205" "$(rg --files | wc -l | tr -d ' ')"
check glob "gen/d3/f133.txt
gen/d3/f63.txt" "$(rg -l --sort path -g 'gen/d3/*' needle)"
check threads "29" "$(rg -j 4 -l 'the needle' gen | wc -l | tr -d ' ')"
check json-end "end" "$(rg --json needle docs/guide.md | tail -n 2 | head -n 1 | cut -d'"' -f4)"
# Edit the tree and search again: the walk sees the change.
rm -r gen
printf 'needle appended\n' >> docs/guide.md
check after-edit "docs/guide.md:3:The needle is here.
docs/guide.md:5:needle appended" "$(rg -n needle docs)"
check no-match-status "1" "$(rg -q nosuchword; echo $?)"
check bad-regex-status "2" "$(rg -q '(' 2>/dev/null; echo $?)"
cd /
rm -rf "$W"
summary ripgrep
