#!/usr/bin/env bash
# dsvl2 against llama.cpp on the same random language model, in one command.
#
#   bench/peer/run.sh -m FOLDER --llama-dir DIR [--llama-build DIR] [-o OUT] [options]
#
# 1. Writes a llama.cpp GGUF (BF16) of FOLDER's language model with llama.cpp's
#    own gguf-py (peer.py convert), and quantizes it with llama-quantize.
# 2. Per type: llama-bench -p 512 -n 128 -r 3 and `dsvl2 bench --json`
#    alternated, --rounds times.
# 3. Quality: llama-perplexity --kl-divergence-base (BF16) then --kl-divergence
#    for each llama.cpp type; `dsvl2 bench --against FOLDER` for dsvl2's types;
#    and `dsvl2 trace` on the very ids llama-perplexity evaluated, scored against
#    llama.cpp's BF16 log-probabilities (peer.py kl-trace).
# 4. One table: stdout, OUT/table.md, OUT/table.json (raw outputs in OUT/raw/).
#
# See bench/peer/README.md. Everything generated goes to --work / -o.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)

usage() {
  cat <<EOF
usage: bench/peer/run.sh -m FOLDER [options]

  -m, --model FOLDER     dsvl2 checkpoint folder (BF16 safetensors + config.json)
  --llama-dir DIR        llama.cpp checkout (env LLAMA_CPP_DIR)
  --llama-build DIR      its CMake build folder (env LLAMA_CPP_BUILD; default DIR/build)
  -o, --out DIR          table and raw results (default /tmp/dsvl2-peer/<folder name>)
  --work DIR             generated GGUFs and logits (default OUT/work)
  --dsvl2 BIN            dsvl2 binary (env DSVL2_BIN; default $repo/build/dsvl2)
  --llama-types LIST     llama.cpp types (default BF16,Q8_0,Q4_0,Q4_K_M)
  --dsvl2-types LIST     dsvl2 types (default bf16,q8_0,q4_0): bf16 is the folder itself,
                         others are made with dsvl2 quantize; an entry TYPE:LLAMATYPE puts
                         it in LLAMATYPE's row (e.g. q4_k:Q4_K_M); otherwise a type shares
                         the row of the llama.cpp type of the same name, or gets its own
  -t, --threads N        threads for every engine (default 2)
  --rounds N             alternated speed rounds (default 2)
  --tokenizer FILE       tokenizer.json for the GGUF (default: FOLDER's, then
                         $repo/demo/tokenizer, then ../shared/tokenizer/deepseek_v3 beside the repository)
  --text FILE            text for the KL measurements (default bench/peer/text.txt)
  --ctx N, --chunks N    llama-perplexity context and chunks (default 512, 2)
  --compute MODE         dsvl2 numerics, bf16 (default) or f32
  --no-keep              delete each type's quantized files once it is measured
  --force                regenerate files that already exist in --work
EOF
}

die() { echo "run.sh: $*" >&2; exit 1; }
say() { echo "[$(date +%H:%M:%S)] $*" >&2; }

model="" out="" work="" llama_dir=${LLAMA_CPP_DIR:-} llama_build=${LLAMA_CPP_BUILD:-}
dsvl2=${DSVL2_BIN:-$repo/build/dsvl2} py=${PYTHON:-/usr/bin/python3}
llama_types="BF16,Q8_0,Q4_0,Q4_K_M" dsvl2_types="bf16,q8_0,q4_0" threads=2 rounds=2 tokenizer=""
text="$here/text.txt" ctx=512 chunks=2 compute=bf16 keep=1 force=0
while [ $# -gt 0 ]; do
  case $1 in
    -m|--model) model=$2; shift 2 ;;
    -o|--out) out=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --llama-dir) llama_dir=$2; shift 2 ;;
    --llama-build) llama_build=$2; shift 2 ;;
    --dsvl2) dsvl2=$2; shift 2 ;;
    --llama-types) llama_types=$2; shift 2 ;;
    --dsvl2-types) dsvl2_types=$2; shift 2 ;;
    -t|--threads) threads=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --tokenizer) tokenizer=$2; shift 2 ;;
    --text) text=$2; shift 2 ;;
    --ctx) ctx=$2; shift 2 ;;
    --chunks) chunks=$2; shift 2 ;;
    --compute) compute=$2; shift 2 ;;
    --no-keep) keep=0; shift ;;
    --force) force=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done

# ---- what must be there -----------------------------------------------------
[ -n "$model" ] || { usage >&2; die "-m FOLDER is required"; }
[ -f "$model/config.json" ] || die "$model: no config.json (expected a dsvl2 checkpoint folder, e.g. from: $dsvl2 make-random-checkpoint --preset tiny --out FOLDER --tokenizer TOKENIZER.json)"
model=$(cd "$model" && pwd)
[ -n "$llama_dir" ] || die "no llama.cpp checkout: pass --llama-dir DIR or set LLAMA_CPP_DIR (see bench/peer/README.md)"
[ -d "$llama_dir/gguf-py/gguf" ] || die "$llama_dir: no gguf-py/gguf: not a llama.cpp checkout"
llama_dir=$(cd "$llama_dir" && pwd)
llama_build=${llama_build:-$llama_dir/build}
for tool in llama-bench llama-quantize llama-perplexity; do
  [ -x "$llama_build/bin/$tool" ] || die "missing $llama_build/bin/$tool. Build it with:
    cmake -S $llama_dir -B $llama_build -DGGML_NATIVE=ON -DLLAMA_CURL=OFF -DCMAKE_BUILD_TYPE=Release
    cmake --build $llama_build -j --target llama-bench llama-quantize llama-perplexity"
done
command -v "$py" >/dev/null || die "no $py (apt-get install -y python3, or set PYTHON)"
"$py" -c 'import numpy' 2>/dev/null || die "$py has no numpy: apt-get install -y python3-numpy"
[ -x "$dsvl2" ] || die "no dsvl2 binary at $dsvl2: build it (cmake --preset release && cmake --build build --target dsvl2) or pass --dsvl2"
[ -f "$text" ] || die "no text file $text"
case $compute in bf16|f32) ;; *) die "--compute must be bf16 or f32" ;; esac
if [ -z "$tokenizer" ]; then
  for t in "$model/tokenizer.json" "$repo/demo/tokenizer/tokenizer.json" "$repo/../shared/tokenizer/deepseek_v3/tokenizer.json"; do
    if [ -f "$t" ]; then tokenizer=$t; break; fi
  done
  [ -n "$tokenizer" ] || die "no tokenizer.json in $model: pass --tokenizer, or fetch it with: bash scripts/fetch-tokenizer"
fi
[ -f "$tokenizer" ] || die "no tokenizer file $tokenizer"

name=$(basename "$model")
out=${out:-/tmp/dsvl2-peer/$name}
work=${work:-$out/work}
raw=$out/raw
mkdir -p "$out" "$raw" "$work"
out=$(cd "$out" && pwd) work=$(cd "$work" && pwd) raw=$out/raw
rm -f "$raw"/*.json "$raw"/*.txt "$raw"/*.log "$raw"/*.load

# ---- the rows ---------------------------------------------------------------
# Row i: llama.cpp type L[i] (or "") and dsvl2 type D[i] (or "").
IFS=, read -r -a ltypes <<<"$llama_types"
IFS=, read -r -a dentries <<<"$dsvl2_types"
L=() D=()
for lt in "${ltypes[@]}"; do L+=("$lt"); D+=(""); done
place() {  # place dsvl2 type $1 in the row of llama type $2 (or a new row)
  local i
  for i in "${!L[@]}"; do
    if [ -n "$2" ] && [ "${L[$i]^^}" = "${2^^}" ] && [ -z "${D[$i]}" ]; then D[$i]=$1; return; fi
  done
  L+=("") D+=("$1")
}
for e in "${dentries[@]}"; do
  [ -n "$e" ] || continue
  dt=${e%%:*}
  case $dt in *[!a-z0-9_]*|"") die "--dsvl2-types: bad type name \"$dt\"" ;; esac
  if [ "$e" != "$dt" ]; then place "$dt" "${e#*:}"; else place "$dt" "$dt"; fi
done
rows_desc=""
for i in "${!L[@]}"; do rows_desc+=" [${L[$i]:-—} / ${D[$i]:-—}]"; done
say "rows:$rows_desc"

# ---- disk -------------------------------------------------------------------
# Relative to the folder's safetensors: the BF16 GGUF about 0.9x, every type's
# files about 2x more in all; with --no-keep, the BF16 GGUF and one type's pair.
weights_kb=$(stat -c %s "$model"/*.safetensors | awk '{s += $1} END {printf "%d", s / 1024}')
need_kb=$((weights_kb * (keep ? 29 : 20) / 10))
free_kb=$(df -Pk "$work" | awk 'NR==2 {print $4}')
if [ "$free_kb" -lt "$need_kb" ]; then
  say "warning: $((free_kb / 1024 / 1024)) GB free in $work; this run may need about $((need_kb / 1024 / 1024)) GB$([ "$keep" = 1 ] && echo ' (--no-keep needs less)')"
fi

# One dsvl2 binary for the whole run, even if the build folder is rebuilt meanwhile.
cp "$dsvl2" "$work/dsvl2.bin.tmp" && mv "$work/dsvl2.bin.tmp" "$work/dsvl2.bin"
dsvl2_src=$dsvl2 dsvl2=$work/dsvl2.bin dsvl2_date=$(date -u -r "$dsvl2_src" +%Y-%m-%dT%H:%MZ)
# The 1-minute load average just before a timed run: others' work on the machine.
loadavg() { cut -d' ' -f1-3 /proc/loadavg >"$1"; }

newer() { [ "$force" = 0 ] && [ -s "$1" ] && { [ -z "${2:-}" ] || [ "$1" -nt "$2" ]; }; }
size_json() { echo "{\"gb\": $(stat -c %s "$1" | awk '{printf "%.4f", $1 / 1e9}')}" >"$2"; }

# ---- 1. the llama.cpp GGUF ----------------------------------------------------
bf16=$work/llama-BF16.gguf
stamp="$model $(stat -c %Y "$model/config.json") $(sha1sum "$here/peer.py" | cut -c1-12) $tokenizer"
if newer "$bf16" && [ "$(cat "$bf16.src" 2>/dev/null)" = "$stamp" ]; then
  say "reusing $bf16"
else
  say "converting $model -> $bf16"
  if ! "$py" "$here/peer.py" convert --model "$model" --out "$bf16" --llama-dir "$llama_dir" --tokenizer "$tokenizer" \
    2>&1 | tee "$raw/convert.log" >&2; then
    die "conversion failed (see $raw/convert.log)"
  fi
  echo "$stamp" >"$bf16.src"
fi
size_json "$bf16" "$raw/size-llama-BF16.json"
bos=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["language_config"].get("bos_token_id", 100000))' "$model/config.json")

# llama.cpp's BF16 log-probabilities on the text: the base of every KL.
kl_base=$work/kl-base.bin
if newer "$kl_base" "$bf16" && [ "$kl_base" -nt "$text" ]; then
  say "reusing $kl_base"
else
  say "llama-perplexity --kl-divergence-base (BF16, -c $ctx, $chunks chunks)"
  "$llama_build/bin/llama-perplexity" -m "$bf16" -f "$text" -c "$ctx" -b "$ctx" --chunks "$chunks" -t "$threads" \
    --kl-divergence-base "$kl_base" >"$raw/llama-ppl-BF16.txt" 2>&1 \
    || die "llama-perplexity failed on $bf16 (see $raw/llama-ppl-BF16.txt)"
fi
"$py" "$here/peer.py" kl-ids --base "$kl_base" --out-dir "$work/ids" --bos "$bos" >"$raw/kl-ids.json"
n_chunk=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["n_chunk"])' "$raw/kl-ids.json")

# ---- 2 + 3. per row: files, alternated speed rounds, quality -------------------------
llama_file() { if [ "$1" = BF16 ]; then echo "$bf16"; else echo "$work/llama-$1.gguf"; fi; }
dsvl2_file() { if [ "$1" = bf16 ]; then echo "$model"; else echo "$work/dsvl2-$1.gguf"; fi; }
row_args=()
for i in "${!L[@]}"; do
  lt=${L[$i]} dt=${D[$i]}
  lf="" df=""
  if [ -n "$lt" ]; then
    lf=$(llama_file "$lt")
    if [ "$lt" != BF16 ]; then
      if newer "$lf" "$bf16"; then say "reusing $lf"; else
        say "llama-quantize $lt"
        "$llama_build/bin/llama-quantize" "$bf16" "$lf" "$lt" "$threads" >"$raw/llama-quantize-$lt.log" 2>&1 \
          || die "llama-quantize $lt failed (see $raw/llama-quantize-$lt.log)"
      fi
    fi
    size_json "$lf" "$raw/size-llama-$lt.json"
  fi
  if [ -n "$dt" ]; then
    df=$(dsvl2_file "$dt")
    if [ "$dt" != bf16 ]; then
      if newer "$df" "$dsvl2_src" && [ "$df" -nt "$model/config.json" ]; then say "reusing $df"; else
        say "dsvl2 quantize $dt"
        "$dsvl2" quantize -m "$model" --type "$dt" -o "$df" >"$raw/dsvl2-quantize-$dt.log" 2>&1 \
          || die "dsvl2 quantize --type $dt failed (see $raw/dsvl2-quantize-$dt.log)"
      fi
      "$py" "$here/peer.py" lm-size "$df" --llama-dir "$llama_dir" >"$raw/size-dsvl2-$dt.json"
    else
      # the BF16 folder dsvl2 reads (all its safetensors: vision and projector too)
      "$py" "$here/peer.py" lm-size "$model" >"$raw/size-dsvl2-bf16.json"
    fi
  fi
  for r in $(seq 1 "$rounds"); do
    if [ -n "$lt" ]; then
      say "round $r: llama-bench $lt"
      loadavg "$raw/llama-bench-$lt-r$r.load"
      "$llama_build/bin/llama-bench" -m "$lf" -p 512 -n 128 -r 3 -t "$threads" -o json \
        >"$raw/llama-bench-$lt-r$r.json" 2>"$raw/llama-bench-$lt-r$r.log" \
        || die "llama-bench failed on $lf (see $raw/llama-bench-$lt-r$r.log)"
    fi
    if [ -n "$dt" ]; then
      against=()
      # the quality check runs after every timed workload, in the last round
      [ "$r" = "$rounds" ] && [ "$dt" != bf16 ] && against=(--against "$model")
      say "round $r: dsvl2 bench $dt${against:+ (with --against)}"
      loadavg "$raw/dsvl2-bench-$dt-r$r.load"
      "$dsvl2" bench -m "$df" --json -t "$threads" --compute "$compute" "${against[@]}" \
        >"$raw/dsvl2-bench-$dt-r$r.json" 2>"$raw/dsvl2-bench-$dt-r$r.log" \
        || die "dsvl2 bench failed on $df (see $raw/dsvl2-bench-$dt-r$r.log)"
    fi
  done
  if [ -n "$lt" ] && [ "$lt" != BF16 ]; then
    say "llama-perplexity --kl-divergence $lt"
    "$llama_build/bin/llama-perplexity" -m "$lf" --kl-divergence-base "$kl_base" --kl-divergence -c "$ctx" -b "$ctx" \
      -t "$threads" >"$raw/llama-kl-$lt.txt" 2>&1 || die "llama-perplexity --kl-divergence failed on $lf (see $raw/llama-kl-$lt.txt)"
  fi
  if [ -n "$dt" ]; then
    say "dsvl2 trace $dt on llama-perplexity's ids ($n_chunk chunks)"
    traces=()
    for c in $(seq 0 $((n_chunk - 1))); do
      "$dsvl2" trace -m "$df" --input-ids "$work/ids/chunk$c.json" --compute "$compute" -t "$threads" \
        -o "$work/trace-$dt-$c.safetensors" >"$raw/dsvl2-trace-$dt-$c.log" 2>&1 \
        || die "dsvl2 trace failed on $df (see $raw/dsvl2-trace-$dt-$c.log)"
      traces+=("$work/trace-$dt-$c.safetensors")
    done
    "$py" "$here/peer.py" kl-trace --base "$kl_base" --trace "${traces[@]}" --out "$raw/dsvl2-samekl-$dt.json" >/dev/null
    rm -f "${traces[@]}"
  fi
  row_args+=(--row "${lt}/${dt}|$lt|$lf|$dt|$df")
  if [ "$keep" = 0 ]; then
    [ -n "$lt" ] && [ "$lt" != BF16 ] && rm -f "$lf"
    [ -n "$dt" ] && [ "$dt" != bf16 ] && rm -f "$df"
  fi
done
if [ "$keep" = 0 ]; then rm -f "$bf16" "$bf16.src" "$kl_base"; fi

# ---- 4. the table -------------------------------------------------------------
llama_commit=$("$py" -c 'import json,sys; j=json.load(open(sys.argv[1])); print(j[0].get("build_commit","?"), "build", j[0].get("build_number","?"))' \
  "$(ls "$raw"/llama-bench-*-r1.json | head -1)" 2>/dev/null || echo "?")
case $llama_commit in unknown*|"?"*)  # a tree without git metadata at build time
  llama_commit="$(git -C "$llama_dir" rev-parse --short HEAD 2>/dev/null || echo 'unknown commit') (git)" ;;
esac
dsvl2_commit="$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$repo" diff --quiet HEAD 2>/dev/null || echo '+changes') (binary of $dsvl2_date)"
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
"$py" - "$raw/meta.json" <<EOF
import json, sys
json.dump({"model": "$model", "threads": $threads, "rounds": $rounds, "llama_commit": "$llama_commit",
           "dsvl2_commit": "$dsvl2_commit", "date": "$(date -u +%Y-%m-%dT%H:%MZ)", "cpu": "$cpu",
           "compute": "$compute", "kl_text": "$(basename "$text") (-c $ctx, $chunks chunks)",
           "kl_positions": $(( chunks * (ctx - 1 - ctx / 2) )), "tokenizer": "$tokenizer"},
          open(sys.argv[1], "w"), indent=2)
EOF
printf '%s\n' "${row_args[@]}" | grep -v '^--row$' >"$raw/rows.txt"
"$py" "$here/peer.py" table --raw "$raw" --out "$out"
say "table: $out/table.md, $out/table.json; raw outputs: $raw"
