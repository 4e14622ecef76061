#!/usr/bin/env bash
# Install sampo's man pages: `sampo man` as sampo.1, and `sampo man COMMAND`
# as sampo-COMMAND.1 for every command `sampo --help` lists, so that
# `man sampo` and `man sampo-run` work.
#
#   scripts/install-man.sh                      # target/release/sampo, default place
#   scripts/install-man.sh path/to/sampo DIR    # into DIR (made if missing)
#
# The default place is /usr/local/share/man/man1 as root, else
# ${XDG_DATA_HOME:-$HOME/.local/share}/man/man1 (man finds it when
# ~/.local/bin is on PATH). A directory that cannot be written is a warning,
# not a failure: the pages are also `sampo man [COMMAND]` at any time.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
sampo="${1:-$repo/target/release/sampo}"
if [ -n "${2:-}" ]; then
    dir="$2"
elif [ "$(id -u)" -eq 0 ]; then
    dir=/usr/local/share/man/man1
else
    dir="${XDG_DATA_HOME:-$HOME/.local/share}/man/man1"
fi

if ! mkdir -p "$dir" 2>/dev/null || [ ! -w "$dir" ]; then
    echo "install-man: cannot write $dir; man pages not installed (see \`sampo man\`)" >&2
    exit 0
fi

# The commands: the first word of each entry under "Commands:" in --help.
mapfile -t commands < <("$sampo" --help |
    awk '/^Commands:/ { on = 1; next } on && /^$/ { exit } on && /^  [a-z]/ { print $1 }' |
    grep -vx help)

page() { # page FILE [COMMAND]: render to a temporary file, then rename
    "$sampo" man ${2:+"$2"} >"$dir/$1.tmp"
    mv "$dir/$1.tmp" "$dir/$1"
}
page sampo.1
for c in "${commands[@]}"; do
    page "sampo-$c.1" "$c"
done
echo "install-man: sampo.1 and ${#commands[@]} command pages in $dir" >&2
