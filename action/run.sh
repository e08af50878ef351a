#!/usr/bin/env bash
# run.sh is the Iter8 GitHub Action's run step (action.yml): with
# ITER8_MODE=local it launches a local experiment from the iter8 chart's
# values (ITER8_VALUES, a file, and ITER8_SET, key=value lines) in
# $RUNNER_TEMP; with ITER8_MODE=assert it asserts the release ITER8_RELEASE
# in the kubeconfig's cluster. Either way the verdict is whether
# ITER8_CONDITIONS hold (kubectl iter8 assert): verdict=pass|fail|error,
# report=<HTML report> (and result=<result file> when local) go to
# $GITHUB_OUTPUT, and the text report to $GITHUB_STEP_SUMMARY. It exits 1
# on fail when ITER8_FAIL_ON_VERDICT is true, and 2 on error.
set -uo pipefail

out=${GITHUB_OUTPUT:-/dev/null}
summary=${GITHUB_STEP_SUMMARY:-/dev/null}
work=$(mktemp -d "${RUNNER_TEMP:-${TMPDIR:-/tmp}}/iter8-XXXXXX")
conditions=${ITER8_CONDITIONS:-completed,nofailure,slos}
mode=${ITER8_MODE:-local}

finish() { # verdict exit-code
	echo "verdict=$1" >>"$out"
	echo "iter8: verdict $1"
	exit "$2"
}
error() {
	echo "::error title=iter8::$*" >&2
	{
		echo "## Iter8: error"
		echo
		echo "$*"
	} >>"$summary"
	finish error 2
}

fail_on=${ITER8_FAIL_ON_VERDICT:-true}
[[ $fail_on == true || $fail_on == false ]] || error "fail-on-verdict \"$fail_on\": want true or false"

case "$mode" in
local)
	[[ -z ${ITER8_RELEASE:-} && -z ${ITER8_NAMESPACE:-} ]] || error "mode local takes values and set, not release or namespace"
	args=(launch --local --spec "$work/experiment.yaml")
	if [[ -n ${ITER8_VALUES:-} ]]; then
		[[ -f $ITER8_VALUES ]] || error "values \"$ITER8_VALUES\": no such file"
		args+=(-f "$ITER8_VALUES")
	fi
	while IFS= read -r line; do
		line=${line#"${line%%[![:space:]]*}"}
		[[ -n $line ]] && args+=(--set "$line")
	done <<<"${ITER8_SET:-}"
	target=(-f "$work/experiment.yaml")
	# launch's own exit status says whether it ran; the verdict is assert's.
	kubectl-iter8 "${args[@]}" >"$work/launch.log" 2>&1
	code=$?
	cat "$work/launch.log"
	if ((code == 2)); then
		error "kubectl iter8 launch --local failed (exit 2): $(tail -n 1 "$work/launch.log")"
	fi
	echo "result=$work/experiment.result.json" >>"$out"
	;;
assert)
	[[ -n ${ITER8_RELEASE:-} ]] || error "mode assert needs release"
	[[ -z ${ITER8_VALUES:-} && -z ${ITER8_SET:-} ]] || error "mode assert takes release, namespace and timeout, not values or set"
	target=("$ITER8_RELEASE")
	[[ -z ${ITER8_NAMESPACE:-} ]] || target+=(-n "$ITER8_NAMESPACE")
	;;
*)
	error "mode \"$mode\": want local or assert"
	;;
esac

kubectl-iter8 assert "${target[@]}" -c "$conditions" --timeout "${ITER8_TIMEOUT:-0s}" >"$work/assert.log" 2>&1
code=$?
cat "$work/assert.log"
kubectl-iter8 report "${target[@]}" >"$work/report.txt" 2>&1 || error "kubectl iter8 report failed: $(tail -n 1 "$work/report.txt")"
kubectl-iter8 report "${target[@]}" -o html >"$work/report.html" 2>/dev/null && echo "report=$work/report.html" >>"$out"
case $code in
0) verdict=pass ;;
1) verdict=fail ;;
*) error "kubectl iter8 assert failed (exit $code): $(tail -n 1 "$work/assert.log")" ;;
esac
{
	echo "## Iter8: $verdict"
	echo
	echo "Conditions: \`$conditions\`"
	echo
	echo '```'
	cat "$work/assert.log" "$work/report.txt"
	echo '```'
} >>"$summary"
if [[ $verdict == fail && $fail_on == true ]]; then
	echo "::error title=iter8::the verdict is fail: $conditions do not all hold" >&2
	finish fail 1
fi
finish "$verdict" 0
