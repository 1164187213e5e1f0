#!/usr/bin/env bash
# Compares hato-bounce with Sisimai (Perl) on tests/fixtures/*.eml.
# Needs: apt-get install -y libsisimai-perl
# Usage: bash tests/compare_sisimai.sh [files...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
files=("$@")
[ ${#files[@]} -gt 0 ] || files=(tests/fixtures/*.eml)
perl -MSisimai -e 1 2>/dev/null || { echo "Sisimai (libsisimai-perl) not installed" >&2; exit 2; }
cargo build -q --example dump
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
"$CARGO_TARGET_DIR/debug/examples/dump" "${files[@]}" | cut -f1-4 | sort > "$tmp/hato"
for f in "${files[@]}"; do
  perl -MSisimai -e '
    my $f = shift;
    my $v = Sisimai->make($f, "vacation" => 1) || [];
    for my $e (@$v) {
      printf "%s\t%s\t%s\t%s\n", $f, lc $e->recipient->address, $e->reason, ($e->deliverystatus || "-");
    }' "$f"
done | sort > "$tmp/sisimai"
# Sisimai 4.x predates these reasons; its nearest equivalents are accepted as
# "agree (v5 reason)".
equiv() { # ours theirs
  case "$1:$2" in
    badreputation:blocked|speeding:blocked|speeding:toomanyconn|requireptr:blocked|authfailure:policyviolation|authfailure:securityerror|authfailure:blocked|speeding:securityerror|badreputation:securityerror|badreputation:spamdetected|speeding:spamdetected) return 0;;
  esac
  return 1
}
total=0; same=0; near=0
printf '%-22s %-30s %-15s %-15s %s\n' FILE RECIPIENT HATO SISIMAI RESULT
while IFS=$'\t' read -r f r reason status; do
  total=$((total+1))
  theirs=$(awk -F'\t' -v f="$f" -v r="$r" '$1==f && $2==r {print $3; exit}' "$tmp/sisimai")
  theirs=${theirs:-"(none)"}
  if [ "$reason" = "$theirs" ]; then res=agree; same=$((same+1))
  elif equiv "$reason" "$theirs"; then res="agree (v5 reason)"; near=$((near+1))
  else res=DIFFER; fi
  printf '%-22s %-30s %-15s %-15s %s\n' "$(basename "$f")" "$r" "$reason" "$theirs" "$res"
done < "$tmp/hato"
missing=$(cut -f1,2 "$tmp/sisimai" | sort -u | comm -13 <(cut -f1,2 "$tmp/hato" | sort -u) - | wc -l)
echo "recipients: $total (Sisimai-only recipients: $missing)"
echo "exact agreement: $same/$total; including Sisimai-5-only reasons: $((same+near))/$total"
