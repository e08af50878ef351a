#!/usr/bin/env bash
# Puts plotly.min.js from the npm package plotly.js-dist-min at DEST
# compressed with gzip -9 -n (1.5 MB instead of 4.8; -n leaves out the name
# and time, so that the same version gives the same bytes), so that the HTML
# report can embed it. Downloads once into a cache outside the clone (CI
# starts from a fresh clone); npm checks the package's integrity.
# Usage: fetch-plotly.sh VERSION DEST
set -euo pipefail
version=$1
dest=$2
cache="${XDG_CACHE_HOME:-$HOME/.cache}/iter8/npm"
cached="$cache/plotly-$version.min.js"
if [ ! -s "$cached" ]; then
	command -v npm >/dev/null || { echo "fetch-plotly: npm is needed to fetch plotly.js-dist-min" >&2; exit 1; }
	mkdir -p "$cache"
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "plotly.js-dist-min@$version" >/dev/null 2>"$tmp/npm.log") || {
		cat "$tmp/npm.log" >&2
		exit 1
	}
	tar -xzf "$tmp"/plotly.js-dist-min-"$version".tgz -C "$tmp" package/plotly.min.js
	mv "$tmp/package/plotly.min.js" "$cached.tmp"
	mv "$cached.tmp" "$cached"
fi
gzip -9 -n -c "$cached" >"$dest.tmp"
mv "$dest.tmp" "$dest"
