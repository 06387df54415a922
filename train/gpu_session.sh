#!/usr/bin/env bash
# One prepared command for a short loan of a GPU (docs/training.md, "A short loan of a GPU"): lite-u
# trained from scratch in several arms side by side on the one GPU, the recipe with one change per
# arm, then each arm's generator exported at the last step that every arm reached, packed one file
# per arm for the trip back. Needs torch, accelerate, safetensors, huggingface-hub, Pillow, numpy,
# tqdm and PyYAML (no dlib: validation, which re-detects landmarks, is left to the evaluation after).
#
#   bash train/gpu_session.sh DATA OUT MINUTES STEPS NAME=OVERRIDES... [-- COMMON OVERRIDES]
#
#   DATA      a train.prepare folder (python -m train.pack_data makes one small enough to carry)
#   OUT       where the packed arms (NAME.tar.gz: model/, run.json, that step's sample grid) and
#             session.log go
#   MINUTES   wall-clock budget of the training, all arms together, fractions allowed (a timeout,
#             then the export)
#   STEPS     optim.steps of every arm (the learning rate decays over its second half)
#   NAME=...  an arm: its name and its overrides, separated by spaces in one argument (NAME= alone:
#             the recipe as it is; a list is YAML without spaces, objective.diff_augment=[color,cutout])
#
# e.g. bash train/gpu_session.sh data/london256_wide_packed "$OUT" 7 3000 R= \
#          M=model.mouth_discriminator=false "A=objective.diff_augment=[]" Q=model.modality_discriminator=false
# Then, here: for each arm, mkdir -p runs/gpu_NAME && tar -xzf NAME.tar.gz -C runs/gpu_NAME and
# python train/evaluate.py --model runs/gpu_NAME/model ...
set -euo pipefail
usage() { sed -n '8,18p' "$0" >&2; exit 2; }
fail() { echo "error: $*" >&2; exit 2; }
[ "$#" -ge 5 ] || usage
data=$1 out=$2 minutes=$3 steps=$4
shift 4
[[ $minutes =~ ^[0-9]*\.?[0-9]+$ ]] && [[ ! $minutes =~ ^0*\.?0*$ ]] || fail "MINUTES must be a positive number, got '$minutes'"
[[ $steps =~ ^[0-9]+$ ]] && [ "$steps" -gt 0 ] || fail "STEPS must be a positive whole number, got '$steps'"
arms=() common=() names=" "
while [ "$#" -gt 0 ]; do
    if [ "$1" = "--" ]; then shift; common=("$@"); break; fi
    name=${1%%=*}
    [[ $1 == *=* && $name =~ ^[A-Za-z0-9_-]+$ ]] ||
        fail "an arm is NAME=OVERRIDES (NAME of letters, digits, _ and -), got '$1'"
    case $names in *" $name "*) fail "two arms are named '$name'" ;; esac
    names+="$name " arms+=("$1")
    shift
done
[ "${#arms[@]}" -gt 0 ] || fail "no arm given (NAME=OVERRIDES, e.g. R= for the recipe as it is)"
[ -f "$data/manifest.jsonl" ] || fail "$data is not a train.prepare folder (no manifest.jsonl)"
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log="$out/session.log"
export PYTHONUNBUFFERED=1
python3 -c "import torch; print('torch', torch.__version__, 'cuda' if torch.cuda.is_available() else 'no GPU: the CPU')" | tee "$log"
every=$(( steps / 10 > 0 ? steps / 10 : 1 ))
pids=()
for arm in "${arms[@]}"; do
    name=${arm%%=*} overrides=${arm#*=}
    read -r -a extra <<< "$overrides"
    # INT first (a KeyboardInterrupt between steps), KILL 30 s later for an arm that ignores it
    timeout --signal=INT --kill-after=30 "${minutes}m" python3 train/train.py \
        --config train/configs/demo_london_lite_u.yaml data.path="$data" output_dir="$work/$name" \
        optim.steps="$steps" optim.decay_start="$(( steps / 2 ))" optim.mixed_precision=bf16 \
        optim.channels_last=true optim.threads=2 data.num_workers=2 tensorboard=false \
        checkpoint_every="$every" sample_every="$every" validate_every="$(( steps + 1 ))" \
        keep_checkpoints="$(( steps / every + 2 ))" "${common[@]}" "${extra[@]}" > "$work/$name.log" 2>&1 &
    pids+=($!)
done
codes=()
for pid in "${pids[@]}"; do
    code=0
    wait "$pid" || code=$?
    codes+=("$code")
done
echo "training ended" | tee -a "$log"
# the last checkpoint step that every arm which checkpointed at all reached: arms compare at equal steps
common_step=$(for arm in "${arms[@]}"; do
    ls "$work/${arm%%=*}/checkpoints" 2>/dev/null | sed -n 's/^step-0*\([0-9][0-9]*\)$/\1/p' | sort -n | tail -1 || true
done | sort -n | head -1)
failed=()
for index in "${!arms[@]}"; do
    name=${arms[$index]%%=*} code=${codes[$index]}
    tr '\r' '\n' < "$work/$name.log" | { grep -E '^(train:|done:|error:|[A-Za-z]*Error)' || true; } |
        tail -n 3 | sed "s/^/$name: /" | tee -a "$log"
    case $code in
        0) ;;
        124 | 137) echo "$name: stopped by the ${minutes}-minute budget" | tee -a "$log" ;;
        *) echo "$name: exited with status $code" | tee -a "$log" ;;
    esac
    checkpoint=$work/$name/checkpoints/$(printf 'step-%07d' "${common_step:-0}")
    if [ "$code" = 0 ] && [ "$common_step" = "$steps" ] && [ -d "$work/$name/model" ]; then
        : # finished, as every arm did: model/ is the final step's export
    else
        rm -rf "$work/$name/model"
        if [ -n "$common_step" ] && [ -d "$checkpoint" ]; then
            python3 train/train.py --export "$checkpoint" "$work/$name/model" >> "$log" 2>&1 || true
        fi
    fi
    if [ ! -f "$work/$name/model/model.safetensors" ]; then
        echo "$name: nothing exported (no checkpoint at step ${common_step:-none})" | tee -a "$log"
        failed+=("$name")
        continue
    fi
    files=(model)
    for extra_file in run.json training_config.yaml "samples/step-$(printf %07d "$common_step").png"; do
        if [ -f "$work/$name/$extra_file" ]; then files+=("$extra_file"); fi
    done
    tar -czf "$out/$name.tar.gz" -C "$work/$name" "${files[@]}"
done
echo "arms exported at step ${common_step:-none} of $steps" | tee -a "$log"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "error: arms ${failed[*]} exported nothing (their errors are in $log)" >&2
    exit 1
fi
