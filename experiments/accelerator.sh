#!/usr/bin/env bash
# Everything this project measures on a lent accelerator, as one command with
# a fixed wall-clock budget (accelerator time is short; see
# experiments/README.md, "On an accelerator"). Usage:
#   bash experiments/accelerator.sh MNIST_DIR ROOT [TRAIN_SECONDS]
# 1. A one-epoch smoke run of configs/test.py (stops here if it fails).
# 2. Side by side on the one accelerator, until TRAIN_SECONDS have passed:
#    - Table 2's D = 50 VAE and eVAE on Burda et al.'s FULL schedule (8
#      stages, 3,280 epochs). At the deadline SIGTERM makes each save a
#      checkpoint at the end of its current epoch and exit (status 75); the
#      schedule is the full one, so the model is the full-budget run's model
#      at that epoch.
#    - the IWAE pair at D = 200 (stages 1-4, as at D = 50), then
#      Table 4's first column (10 epochs), through experiments.run_sweep
#      (several workers share the GPU).
# 3. The two Table 2 models evaluated at their last checkpoint: IW (k = 5000)
#    on all 10,000 test images, bounds, active units, Parzen.
# 4. python -m experiments.benchmark alone (speed, 8 vmapped models vs 8
#    sequential).
# Matmuls run at full f32 precision (no TF32), as on CPU.
set -uo pipefail
DATA=${1:?folder of MNIST IDX files}
ROOT=${2:?output folder}
TRAIN_SECONDS=${3:-330}
PY=${PYTHON:-python3}
START=$(date +%s)
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false \
  JAX_DEFAULT_MATMUL_PRECISION=highest
mkdir -p "$ROOT"
stamp() { echo "[$(( $(date +%s) - START )) s] $*"; }
# With ARCHIVE=DIR set, the results are packed into DIR after each stage:
# full.tgz (the two Table 2 workdirs, with their last checkpoint) and
# results.tgz (everything else but checkpoints and TensorBoard events).
archive() {
  [[ -n "${ARCHIVE:-}" ]] || return 0
  tar czf "$ARCHIVE/full.tgz" -C "$ROOT" --exclude='events.out*' full
  tar czf "$ARCHIVE/results.tgz" -C "$ROOT" --exclude=checkpoints \
    --exclude='events.out*' --exclude=full --exclude=smoke .
}

stamp smoke
if ! timeout 120 "$PY" -m evae_jax.main --config=configs/test.py \
    --workdir="$ROOT/smoke" --config.train.num_epochs=1 \
    --config.train.progress_bar=False > "$ROOT/smoke.log" 2>&1; then
  tail -40 "$ROOT/smoke.log"; exit 1
fi
"$PY" -c 'import jax; print(jax.__version__, jax.devices())'

# Table 2, D = 50, the full schedule; a checkpoint every 10 epochs (and at
# the deadline), validation every 10 epochs.
T2=(--config=configs/sweeps/table2.py --config.model.latent_dim=50
    --config.data.name=idx "--config.data.path=$DATA"
    --config.train.burda_stages=8 --config.train.checkpoint_every_steps=29800
    --config.train.eval_every_epochs=10 --config.train.progress_bar=False
    --config.train.keep_checkpoints=1 --config.eval.iw_num_examples=0)
LEFT=$(( TRAIN_SECONDS - ($(date +%s) - START) ))
PIDS=()
for kind in vae evae; do
  stamp "train $kind for $LEFT s"
  timeout -s TERM "$LEFT" "$PY" -m evae_jax.main "${T2[@]}" \
    --config.model.kind=$kind "--workdir=$ROOT/full/kind=$kind" \
    > "$ROOT/full_$kind.log" 2>&1 &
  PIDS+=($!)
done
sweeps() {
  local s=("$PY" -m experiments.run_sweep --set=data.name=idx
           "--set=data.path=$DATA" --set=train.progress_bar=False)
  "${s[@]}" --root="$ROOT/iwae" --sweep=configs/sweeps/iwae.py \
    --where=model.latent_dim=200 --set=train.burda_stages=4 \
    --set=eval.iw_num_examples=2000 --workers=2
  "${s[@]}" --root="$ROOT/table4" --sweep=configs/sweeps/table4.py \
    --where=model.num_layers=1 --where=model.hidden_dim=500 \
    --set=train.num_epochs=10 --set=eval.num_examples=2000 \
    --set=eval.iw_samples=100 --set=eval.iw_num_examples=500 --workers=3
}
export -f sweeps; export PY DATA ROOT
# timeout signals its whole process group: the sweep runners and the points
# they run (which checkpoint and exit 75; finished points keep eval.json).
timeout -s TERM "$LEFT" bash -c sweeps > "$ROOT/sweeps.log" 2>&1 &
PIDS+=($!)
wait "${PIDS[@]}"
stamp "training stopped"
tail -n 3 "$ROOT"/full_*.log; tail -n 25 "$ROOT/sweeps.log"

for kind in vae evae; do
  timeout 90 "$PY" -m evae_jax.main "${T2[@]}" --config.model.kind=$kind \
    "--workdir=$ROOT/full/kind=$kind" --mode=evaluate \
    > "$ROOT/full_${kind}_eval.log" 2>&1 &
done
wait
stamp "evaluated"
for kind in vae evae; do
  "$PY" - "$ROOT/full/kind=$kind/eval.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(sys.argv[1], 'epochs', r['checkpoint_epochs'], 'IW',
      r['iw_log_likelihood'], 'active', r['active_units']['count'])
EOF
done

archive

stamp benchmark
timeout 90 "$PY" -m experiments.benchmark --out="$ROOT/benchmark.json" \
  > "$ROOT/benchmark.log" 2>&1
cat "$ROOT/benchmark.log" | tail -30
archive
stamp done
