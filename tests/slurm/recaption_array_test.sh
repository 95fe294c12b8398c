#!/usr/bin/env bash
# `dsvl2 recaption` as a real Slurm array job (scripts/slurm/recaption.sbatch)
# on a private one-node cluster (cluster.sh): a random toy checkpoint, eight
# small WebDataset tars, an array of four tasks (two units each) with short
# captions; one task is killed with SIGKILL after its first unit is finished
# and while its second is being written, then resubmitted on its own with the
# same arguments. Then every input key appears exactly once over all output
# tars (as a KEY.json member and as the record's "key"), every unit has its
# tar and stats and no partial file, the unit finished before the kill is
# untouched by the resumed task, and that task says it skipped it.
#
#   tests/slurm/recaption_array_test.sh      (CTest: slurm_recaption_array)
#
# Environment: DSVL2_BIN (default build/dsvl2), DSVL2_SOURCE_DIR (the
# checkout: demo/demo.png, scripts/slurm), DSVL2_SHARED_DIR (shared/ with
# tokenizer/deepseek_v3/tokenizer.json; default ../shared beside the
# checkout). Exit 77 (skipped) where Slurm cannot start, see cluster.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${DSVL2_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
bin=$(readlink -f "${DSVL2_BIN:-$src/build/dsvl2}")
shared=${DSVL2_SHARED_DIR:-$src/../shared}
tokenizer=$shared/tokenizer/deepseek_v3/tokenizer.json
units=8 shards=4
victim=2 # its units are data-2 and data-6 (unit i goes to shard i % 4)
say() { echo "recaption-array: [$SECONDS s] $*" >&2; }
fail() { echo "recaption-array: FAILED: $*" >&2; exit 1; }
# Every wait below ends by this deadline (CTest's TIMEOUT is 300 s), so the
# EXIT trap always gets to stop the cluster.
end=$((SECONDS + ${DSVL2_SLURM_TEST_BUDGET:-240}))
left() { echo $((end > SECONDS ? end - SECONDS : 1)); }
[ -x "$bin" ] || fail "dsvl2 binary not found: $bin (build it, or set DSVL2_BIN)"
# As the C++ tests do: without shared/ the test is skipped, visibly, except
# under CI=true, where a run must not pass by skipping.
if [ ! -f "$tokenizer" ]; then
  [ "${CI:-}" = true ] && fail "tokenizer not found: $tokenizer (set DSVL2_SHARED_DIR), and CI=true requires it"
  echo "recaption-array: skipped: tokenizer not found: $tokenizer (set DSVL2_SHARED_DIR)" >&2
  exit 77
fi
"$bin" recaption --help >/dev/null 2>&1 || fail "$bin has no recaption command"

# shellcheck source=cluster.sh
source "$here/cluster.sh"
slurm_cluster_start
work=$SLURM_CLUSTER_DIR/work
mkdir -p "$work/in" "$work/logs"
cd "$work"

timeout "$(left)" "$bin" make-random-checkpoint --preset tiny-test --out model --seed 5 --tokenizer "$tokenizer" >logs/checkpoint.log 2>&1 ||
  fail "make-random-checkpoint: $(tail -n 5 logs/checkpoint.log)"

# ---- Eight WebDataset shards of 3 or 4 samples: KEY.png (the demo picture)
# and KEY.txt (alt-text). The victim's units have 4 each.
: >keys.expected
for ((u = 0; u < units; u++)); do
  mkdir -p "samples/$u"
  members=()
  for ((s = 0; s < 3 + (u % 2 == 0); s++)); do
    key=u${u}_s$s
    cp "$src/demo/demo.png" "samples/$u/$key.png"
    echo "A test picture, unit $u sample $s" >"samples/$u/$key.txt"
    members+=("$key.png" "$key.txt")
    echo "$key" >>keys.expected
  done
  tar -cf "in/data-$u.tar" -C "samples/$u" "${members[@]}"
done
sort -o keys.expected keys.expected
say "made the checkpoint and $units shards of $(wc -l <keys.expected) samples"

# ---- The array job: one CPU and thread per task (two tasks side by side on
# two cores), short captions; --time bounds a task that hangs.
export DSVL2="$bin"
sbatch_args=(--parsable --chdir="$work" --cpus-per-task=1 --time=10 --output="$work/logs/recaption-%A_%a.log")
args=(-m "$work/model" --input "$work/in/data-{0..$((units - 1))}.tar" --out "$work/out" -n 8 --seed 3
  --num-shards "$shards")
jid=$(sbatch "${sbatch_args[@]}" --array=0-$((shards - 1)) "$src/scripts/slurm/recaption.sbatch" "${args[@]}")
say "submitted array job $jid (tasks 0-$((shards - 1)))"

first=out/data-$victim.tar second=out/data-$((victim + shards)).tar
pids=""
while :; do
  [ ! -e "$second" ] || fail "task $victim finished before it could be killed"
  [ -n "$pids" ] || pids=$(slurm_task_pids "$jid" $victim "$bin")
  # Past the first unit, inside the second: whatever of it is on disk is not
  # committed yet (the ledger commits every 4 records), so the resume must
  # drop it and make those records again, once.
  [ -n "$pids" ] && [ -e "$first" ] && [ -e "$second.partial" ] && break
  if [ $SECONDS -ge $end ]; then
    cat logs/recaption-"$jid"_$victim.log >&2 2>/dev/null || true
    fail "task $victim never reached its second unit: $(squeue -j "$jid" 2>&1)"
  fi
  sleep 0.05
done
# shellcheck disable=SC2086
kill -KILL $pids || fail "task $victim (pid $pids) was gone before the kill"
say "killed task $victim (pid $pids) in its second unit ($(stat -c %s "$second.partial") bytes written)"
first_sum=$(cksum <"$first")

slurm_expect_one_failed_task "$jid" "$shards" "$victim" "$(left)" recaption || fail "the array job did not end as expected"
[ -e "$second.partial" ] && [ ! -e "$second" ] || fail "the killed task left no partial unit, or a finished one"

# ---- Resubmit the killed index alone, with the same arguments.
jid2=$(sbatch "${sbatch_args[@]}" --array=$victim "$src/scripts/slurm/recaption.sbatch" "${args[@]}")
say "resubmitted task $victim as job $jid2"
slurm_wait_job "$jid2" "$(left)" || fail "the resubmitted task did not finish"
log2=logs/recaption-${jid2}_$victim.log
slurm_task_states "$jid2" | grep -q "^$victim COMPLETED " ||
  fail "the resubmitted task failed: $(slurm_task_states "$jid2"); $(cat "$log2")"

# ---- Every key exactly once, every unit complete with its stats.
for ((u = 0; u < units; u++)); do
  [ -f "out/data-$u.tar" ] || fail "out/data-$u.tar is missing"
  [ ! -e "out/data-$u.tar.partial" ] || fail "out/data-$u.tar.partial is left over"
  [ -f "out/data-${u}_stats.json" ] || fail "out/data-${u}_stats.json is missing"
  n=$(sed -n 's/^ *"count": \([0-9]*\).*/\1/p' "out/data-${u}_stats.json" | head -n1)
  [ "$n" = $((3 + (u % 2 == 0))) ] || fail "out/data-${u}_stats.json counts $n records, not $((3 + (u % 2 == 0)))"
done
for t in out/data-*.tar; do tar -tf "$t"; done | sort >members.got
sed 's/$/.json/' keys.expected >members.expected
for t in out/data-*.tar; do tar -xOf "$t"; done | grep -o '"key":"[^"]*"' | sed 's/"key":"\(.*\)"/\1/' | sort >keys.got
for what in members keys; do
  dups=$(uniq -d $what.got | wc -l)
  missing=$(comm -23 $what.expected $what.got | wc -l)
  extra=$(comm -13 $what.expected $what.got | wc -l)
  [ "$dups" = 0 ] && [ "$missing" = 0 ] && [ "$extra" = 0 ] ||
    fail "output $what: $(wc -l <$what.got) for $(wc -l <keys.expected) samples: $dups repeated, $missing missing, $extra unexpected"
done
errors=$(for t in out/data-*.tar; do tar -xOf "$t"; done | grep -o '"error":null' | wc -l)
[ "$errors" = "$(wc -l <keys.expected)" ] || fail "only $errors of $(wc -l <keys.expected) records have no error"

# The unit finished before the kill was skipped, not redone.
[ "$(cksum <"$first")" = "$first_sum" ] || fail "$first changed when the task was resumed"
earlier=$(sed -n 's/.* \([0-9]*\) done earlier.*/\1/p' "$log2" | tail -n1)
[ -n "$earlier" ] && [ "$earlier" -ge 4 ] || fail "the resumed task did not skip the finished unit: $(tail -n 3 "$log2")"
say "passed: $(wc -l <keys.expected) keys once each over $units units; task $victim resumed after $earlier records"
