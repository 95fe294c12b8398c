#!/usr/bin/env bash
# `dsvl2 synth` as a real Slurm array job (scripts/slurm/synth.sbatch) on a
# private one-node cluster (cluster.sh): four tasks, one of them killed with
# SIGKILL in the middle of its shard (after its ledger has committed some
# records, before it finishes), that task resubmitted on its own; then every
# record of a single-process run appears exactly once across the four shard
# files, byte for byte, the drawn images are the same bytes, each shard has
# its stats, and the resumed task's stats show that it skipped the committed
# part instead of redoing it.
#
#   tests/slurm/synth_array_test.sh      (CTest: slurm_synth_array)
#
# Environment: DSVL2_BIN (default build/dsvl2), DSVL2_SOURCE_DIR (the
# checkout, for demo/demo.png and scripts/slurm), DSVL2_SLURM_SYNTH_IMAGES
# (default 1000: about 15 ms each, so a shard takes seconds and the kill
# lands mid-run). Exit 77 (skipped) where Slurm cannot start, see cluster.sh.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=${DSVL2_SOURCE_DIR:-$(cd "$here/../.." && pwd)}
bin=$(readlink -f "${DSVL2_BIN:-$src/build/dsvl2}")
images=${DSVL2_SLURM_SYNTH_IMAGES:-1000}
shards=4
victim=2      # the task that is killed
kill_at=100   # its partial file's line count at the kill: past the first commit (64)
say() { echo "synth-array: [$SECONDS s] $*" >&2; }
fail() { echo "synth-array: FAILED: $*" >&2; exit 1; }
# Every wait below ends by this deadline (CTest's TIMEOUT is 300 s), so the
# EXIT trap always gets to stop the cluster.
end=$((SECONDS + ${DSVL2_SLURM_TEST_BUDGET:-240}))
left() { echo $((end > SECONDS ? end - SECONDS : 1)); }
[ -x "$bin" ] || fail "dsvl2 binary not found: $bin (build it, or set DSVL2_BIN)"

# shellcheck source=cluster.sh
source "$here/cluster.sh"
slurm_cluster_start
work=$SLURM_CLUSTER_DIR/work
mkdir -p "$work/img" "$work/logs"
cd "$work"

# ---- The annotation set: $images COCO images, all naming the demo picture,
# with a cat or a dog and a car in each at varying places; every task applies.
cp "$src/demo/demo.png" img/demo.png
{
  printf '{"categories":[{"id":1,"name":"cat"},{"id":2,"name":"dog"},{"id":3,"name":"car"}],"images":['
  for ((i = 1; i <= images; i++)); do
    [ $i -gt 1 ] && printf ','
    printf '{"id":%d,"file_name":"demo.png","width":640,"height":480}' $i
  done
  printf '],"annotations":['
  for ((i = 1; i <= images; i++)); do
    [ $i -gt 1 ] && printf ','
    x=$((10 + i * 7 % 300)) y=$((20 + i * 13 % 200))
    printf '{"id":%d,"image_id":%d,"category_id":%d,"bbox":[%d,%d,120,90],"iscrowd":0},' $((2 * i)) $i $((1 + i % 2)) $x $y
    printf '{"id":%d,"image_id":%d,"category_id":3,"bbox":[%d,%d,70,60],"iscrowd":0}' $((2 * i + 1)) $i $((x + 180)) $((y + 150))
  done
  printf ']}\n'
} >instances.json
# shellcheck disable=SC2054  # --tasks takes a comma list
args=(-q --annotations "$work/instances.json" --images "$work/img" --tasks vip,ground,neg,icg --seed 7)

say "reference: one process, $images images"
timeout "$(left)" "$bin" synth "${args[@]}" --out "$work/ref" || fail "the single-process run failed"
[ "$(wc -l <ref/synth.jsonl)" -eq "$images" ] || fail "the single-process run made $(wc -l <ref/synth.jsonl) records, not $images"

# ---- The array job. One CPU per task (synth is single-threaded) so tasks run
# side by side; --time bounds a task that hangs.
export DSVL2="$bin"
sbatch_args=(--parsable --chdir="$work" --cpus-per-task=1 --time=10 --output="$work/logs/synth-%A_%a.log")
jid=$(sbatch "${sbatch_args[@]}" --array=0-$((shards - 1)) "$src/scripts/slurm/synth.sbatch" "${args[@]}" --out "$work/out" \
  --num-shards $shards)
say "submitted array job $jid (tasks 0-$((shards - 1)))"

name=$(printf 'synth-%05d-of-%05d' $victim $shards)
partial=out/$name.jsonl.partial
pids=""
while :; do
  [ ! -e "out/$name.jsonl" ] || fail "task $victim finished before it could be killed (raise DSVL2_SLURM_SYNTH_IMAGES)"
  [ -n "$pids" ] || pids=$(slurm_task_pids "$jid" $victim "$bin")
  [ -n "$pids" ] && [ -e "$partial" ] && [ "$(wc -l <"$partial")" -ge $kill_at ] && break
  [ $SECONDS -lt $end ] || fail "task $victim never got $kill_at records into $partial: $(squeue -j "$jid" 2>&1)"
  sleep 0.05
done
# shellcheck disable=SC2086
kill -KILL $pids || fail "task $victim (pid $pids) was gone before the kill"
say "killed task $victim (pid $pids) with $(wc -l <"$partial") lines in its partial file"

slurm_expect_one_failed_task "$jid" "$shards" "$victim" "$(left)" synth || fail "the array job did not end as expected"
[ -e "$partial" ] && [ ! -e "out/$name.jsonl" ] || fail "the killed task left no partial shard, or a finished one"

# ---- Resubmit the killed index alone, with the same arguments. A one-task
# array (--array=2) has SLURM_ARRAY_TASK_COUNT=1 and MIN=2; with
# --num-shards given, the task id itself is the shard.
jid2=$(sbatch "${sbatch_args[@]}" --array=$victim "$src/scripts/slurm/synth.sbatch" "${args[@]}" --out "$work/out" \
  --num-shards $shards)
say "resubmitted task $victim as job $jid2"
slurm_wait_job "$jid2" "$(left)" || fail "the resubmitted task did not finish"
slurm_task_states "$jid2" | grep -q "^$victim COMPLETED " ||
  fail "the resubmitted task failed: $(slurm_task_states "$jid2"); $(cat logs/synth-"$jid2"_$victim.log)"

# ---- Every record exactly once, nothing else; stats for every shard.
for ((t = 0; t < shards; t++)); do
  s=$(printf 'out/synth-%05d-of-%05d' $t $shards)
  [ -f "$s.jsonl" ] || fail "$s.jsonl is missing"
  [ ! -e "$s.jsonl.partial" ] || fail "$s.jsonl.partial is left over"
  [ -f "${s}_stats.json" ] || fail "${s}_stats.json is missing"
done
jsonl=(out/*.jsonl)
[ ${#jsonl[@]} = $shards ] || fail "out/ holds other JSONL files than the $shards shards: ${jsonl[*]}"
cat out/synth-*-of-*.jsonl | sort >array.sorted
sort ref/synth.jsonl >ref.sorted
dups=$(uniq -d array.sorted | wc -l)
missing=$(comm -23 ref.sorted array.sorted | wc -l)
extra=$(comm -13 ref.sorted array.sorted | wc -l)
[ "$dups" = 0 ] && [ "$missing" = 0 ] && [ "$extra" = 0 ] ||
  fail "the shards hold $(wc -l <array.sorted) records for $images images: $dups repeated, $missing missing, $extra not in the single-process run"
# A kill in the middle of writing an image leaves its temporary file (the
# resume writes the image again under a new one): litter, not a wrong record.
leftover=$(find out/images -name '*.tmp.*' | sort)
[ -z "$leftover" ] || say "warning: temporary files left by the killed task: $leftover"
diff -rq -x '*.tmp.*' ref/images out/images >&2 || fail "drawn images differ from the single-process run's"

# The resumed task skipped what its ledger had committed (at least the first
# batch of 64) and made only the rest.
stats=out/${name}_stats.json
field() { sed -n "s/^ *\"$1\": \([0-9]*\).*/\1/p" "$stats" | head -n1; }
owned=$(field images) earlier=$(field done_earlier)
[ "$(field records)" = "$owned" ] || fail "$stats: records $(field records), images $owned"
[ -n "$earlier" ] && [ "$earlier" -ge 64 ] && [ "$earlier" -lt "$owned" ] ||
  fail "$stats: done_earlier=$earlier of $owned; the kill should have left a committed part and an unfinished rest"
say "passed: $images records once each over $shards shards; task $victim resumed after $earlier of $owned"
