#!/bin/sh
# check_readme.sh README EXAMPLE -- the README's quickstart must be the example.
#
# README.md carries a line "<!-- quickstart: examples/quickstart.c -->"; the
# first ```c block after it must be identical to the example file, which the
# test suite compiles and runs. This keeps the README's code honest.
set -eu
readme=$1
example=$2
marker="<!-- quickstart: $example -->"

if [ ! -f "$readme" ]; then
    echo "check_readme: $readme does not exist (it must hold the quickstart of $example)" >&2
    exit 1
fi
if ! grep -qF -- "$marker" "$readme"; then
    echo "check_readme: $readme has no line '$marker' followed by a \`\`\`c block" >&2
    echo "check_readme: add it with the contents of $example (the README's first example)" >&2
    exit 1
fi

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# After the marker: skip to the first line that is exactly ```c, print until
# the closing ```.
awk -v marker="$marker" '
    index($0, marker) && !seen { seen = 1; next }
    seen == 1 && /^```c[ \t]*$/  { seen = 2; next }
    seen == 2 && /^```[ \t]*$/   { seen = 3; exit }
    seen == 2                    { print }
    END { if (seen != 3) exit 1 }
' "$readme" > "$tmp" || {
    echo "check_readme: no complete \`\`\`c block after '$marker' in $readme" >&2
    exit 1
}
if ! diff -u "$example" "$tmp" > /dev/null; then
    echo "check_readme: the quickstart in $readme differs from $example:" >&2
    diff -u "$example" "$tmp" | sed 's/^/  /' >&2 || true
    exit 1
fi
echo "check_readme: $readme quickstart is identical to $example"
