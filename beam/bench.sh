#!/usr/bin/env bash
# Issue 15's bench: h2scope-beam (Prism, in-process) against h2scope batch
# on this machine, over COPIES copies of testdata/pcaps (a few hundred
# captures) and over 1,000 copies of a 6 KB capture (the per-capture
# overhead). Prints wall and CPU time, files/s, MB/s and max RSS, best of
# RUNS. Run from the repository root: beam/bench.sh
set -euo pipefail
COPIES=${COPIES:-8}
RUNS=${RUNS:-3}
work=$(mktemp -d /tmp/h2scope-beam-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/h2scope" ./cmd/h2scope
(cd beam && go build -o "$work/h2scope-beam" ./cmd/h2scope-beam)
mkdir "$work/copies" "$work/tiny"
for i in $(seq 1 "$COPIES"); do cp -r testdata/pcaps "$work/copies/copy$i"; done
for i in $(seq 1 1000); do cp testdata/pcaps/syn-unanswered.pcapng "$work/tiny/t$i-x.pcapng"; done

# measure LABEL DIR CMD...: best wall time of RUNS, with its CPU time and RSS.
measure() {
	local label=$1 dir=$2; shift 2
	local n mb best=""
	n=$(find "$dir" -name '*.pcap*' | wc -l)
	mb=$(find "$dir" -name '*.pcap*' -printf '%s\n' | awk '{s+=$1} END {printf "%.1f", s/1e6}')
	for _ in $(seq 1 "$RUNS"); do
		rm -f "$work/out.ndjson"
		local line
		/usr/bin/time -o "$work/time" -f '%e %U %S %M' "$@" >/dev/null 2>&1 || true
		line=$(tail -1 "$work/time")
		if [ -z "$best" ] || awk -v a="${line%% *}" -v b="${best%% *}" 'BEGIN {exit !(a < b)}'; then best=$line; fi
	done
	read -r wall user sys rss <<<"$best"
	awk -v l="$label" -v n="$n" -v mb="$mb" -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN {
		printf "%-28s %4d files %6.1f MB  wall %5.2f s  cpu %5.2f s  %6.0f files/s  %6.1f MB/s  rss %4.0f MB\n",
			l, n, mb, w, u+s, n/w, mb/w, r/1024 }'
}
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) CPUs"
for set in copies tiny; do
	d="$work/$set"
	measure "batch --out FILE ($set)" "$d" "$work/h2scope" batch --no-progress --out "$work/out.ndjson" "$d"
	measure "batch --out - ($set)" "$d" "$work/h2scope" batch --no-progress --out - "$d"
	measure "h2scope-beam prism ($set)" "$d" "$work/h2scope-beam" --out "$work/out.ndjson" "$d"
done
"$work/h2scope" batch --no-progress --out "$work/a.ndjson" "$work/copies" 2>/dev/null || true
"$work/h2scope-beam" --out "$work/b.ndjson" "$work/copies" 2>/dev/null || true
cmp -s "$work/a.ndjson" "$work/b.ndjson" && echo "lines: identical" || echo "lines: DIFFERENT"
