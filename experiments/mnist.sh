#!/usr/bin/env bash
# The MNIST reproductions of results/RESULTS.md, one experiment per
# call, on a local folder of the original MNIST IDX files. Usage:
#   bash experiments/mnist.sh EXPERIMENT MNIST_DIR ROOT [RUN_SWEEP FLAGS...]
# (e.g. --where=model.epitome_size=4 for Table 4's better K alone)
# EXPERIMENT: table2 | table2_stride | budget | remedies | iwae | fig3 | precision | precision_table2 | table4 | fig7 | fig2 | fig6 | assignment
# Each trains and evaluates every point into ROOT/EXPERIMENT/ (resumable:
# rerun to continue) and prints the table, from the kept results, with the
# paper's numbers beside ours.
# SEEDS=N trains every point with seeds 0..N-1 (default 3); each finished
# point is copied to KEEP/EXPERIMENT/<point>/ (default results/mnist,
# meant to be committed) and a point already there is skipped.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash experiments/mnist.sh EXPERIMENT MNIST_DIR [ROOT [RUN_SWEEP FLAGS...]]" >&2
  echo "EXPERIMENT: table2 | table2_stride | budget | remedies | iwae | fig3 | precision | precision_table2 | table4 | fig7 | fig2 | fig6 | assignment" >&2
  exit 2
fi
EXP=$1
DATA=$2
ROOT=${3:-runs/mnist}
shift $(( $# < 3 ? $# : 3 ))  # the rest goes to every run_sweep call
PY=${PYTHON:-python}  # PYTHON=python3 where there is no 'python'
KEPT=${KEEP:-results/mnist}
S=("$PY" -m experiments.run_sweep --root="$ROOT/$EXP" --set=data.name=idx
   "--set=data.path=$DATA" --set=train.progress_bar=False
   --workers="${WORKERS:-2}" --devices="${DEVICES:-auto}"
   --seeds="${SEEDS:-3}" "--keep=$KEPT/$EXP")
EXTRA=("$@")  # after each experiment's own flags, so the caller's --set wins
sweep() { "${S[@]}" "$@" ${EXTRA[@]+"${EXTRA[@]}"}; }
# Reduced budget for Fig. 2/3 and Table 4 (the paper trains 200 epochs):
# 10 epochs, Parzen (10,000 samples, sigma on 1,000 validation images)
# scored on the first 2,000 test images.
REDUCED=(--set=train.num_epochs=10 --set=eval.num_examples=2000)
case "$EXP" in
  table2)  # Burda et al.'s protocol, stages 1-4 (40 epochs); the D = 50 pair
    # is table2_stride's VAE and stride-25 eVAE (the same configs)
    for d in 100 200; do
      sweep --sweep=configs/sweeps/table2.py --set=train.burda_stages=4 \
        --set=eval.iw_num_examples=2000 --where=model.latent_dim=$d
    done
    sweep --sweep=configs/sweeps/table2_stride.py --set=train.burda_stages=4 \
      --set=eval.iw_num_examples=2000 --where=model.latent_dim=50 \
      --where=model.stride=25 "--keep=$KEPT/table2_stride"
    "$PY" -m experiments.tables --root="$KEPT/table2,$KEPT/table2_stride" \
      --table=table2 ;;
  table2_stride)  # D = 50: eVAE K = 25 at stride 25 / 5 / 1, VAE D = 50 / 25
    sweep --sweep=configs/sweeps/table2_stride.py --set=train.burda_stages=4 \
      --set=eval.iw_num_examples=2000
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=stride ;;
  remedies)  # KL warm-up, free bits, dropout, IWAE; VAE/eVAE from table2_stride
    sweep --sweep=configs/sweeps/remedies.py --set=train.burda_stages=4 \
      --set=eval.iw_num_examples=2000
    "$PY" -m experiments.tables --root="$KEPT/table2_stride,$KEPT/$EXP" \
      --table=remedies ;;
  budget)  # Table 2's D = 50 pair (VAE, eVAE K = 25) at the ends of Burda
    # stages 3, 4, 5 (13, 40, 121 epochs): one workdir per point, resumed
    # from one stage's end to the next (train.burda_stages may change on
    # resume) and evaluated at each, with the Table 2 protocol (IW k = 5000
    # on the first 2,000 test images); each stage kept in KEEP/budget/
    # stages=N. STAGES="3 4" stops after 40 epochs.
    for s in ${STAGES:-3 4 5}; do
      sweep --sweep=configs/sweeps/table2.py --where=model.latent_dim=50 \
        --set=train.burda_stages=$s --set=eval.iw_num_examples=2000 \
        "--keep=$KEPT/$EXP/stages=$s"
    done
    prev=""  # each stage's gap, then how it moved since the stage before
    for s in ${STAGES:-3 4 5}; do
      "$PY" -m experiments.paired --root="$KEPT/$EXP/stages=$s" \
        --base=kind=vae --other=kind=evae --keys=iw_marginal,parzen || true
      if [ -n "$prev" ]; then
        "$PY" -m experiments.paired --root="$KEPT/$EXP/stages=$prev" \
          --then_root="$KEPT/$EXP/stages=$s" --base=kind=vae \
          --other=kind=evae --keys=iw_marginal,parzen || true
      fi
      prev=$s
    done ;;
  iwae)    # same budget and protocol, IWAE objectives, k = 5
    sweep --sweep=configs/sweeps/iwae.py --set=train.burda_stages=4 \
      --set=eval.iw_num_examples=2000
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=iwae ;;
  fig3)
    sweep --sweep=configs/sweeps/fig3.py "${REDUCED[@]}" \
      --set=eval.iw_samples=1000 --set=eval.iw_num_examples=1000
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=summary ;;
  precision)  # model.dtype float32 against bfloat16: the Fig. 3 VAE and
    # eVAE (no dropout VAE), Fig. 3's protocol, evaluated in float32; kept
    # in KEEP/precision/<dtype>/ with the same point names, for paired tables
    for dtype in float32 bfloat16; do
      sweep --sweep=configs/sweeps/fig3.py "${REDUCED[@]}" \
        --set=eval.iw_samples=1000 --set=eval.iw_num_examples=1000 \
        --where=train.z_dropout_rate=0 --set=model.dtype=$dtype \
        "--root=$ROOT/$EXP/$dtype" "--keep=$KEPT/$EXP/$dtype"
    done
    for kind in vae evae; do
      "$PY" -m experiments.paired --root="$KEPT/$EXP/float32" \
        --other_root="$KEPT/$EXP/bfloat16" --base=kind=$kind \
        --other=kind=$kind --margin=0.5 --paper_epochs=200 || true
    done ;;
  precision_table2)  # the same for Table 2's D = 50 pair (VAE, eVAE K = 25,
    # 40 epochs, IW k = 5000 on 2,000 test images, evaluated in float32):
    # bfloat16 trained here, float32 from budget/stages=4 (the same configs)
    sweep --sweep=configs/sweeps/table2.py --where=model.latent_dim=50 \
      --set=train.burda_stages=4 --set=eval.iw_num_examples=2000 \
      --set=model.dtype=bfloat16 "--root=$ROOT/$EXP/bfloat16" \
      "--keep=$KEPT/$EXP/bfloat16"
    for kind in vae evae; do
      "$PY" -m experiments.paired --root="$KEPT/budget/stages=4" \
        --other_root="$KEPT/$EXP/bfloat16" --base=kind=$kind \
        --other=kind=$kind --keys=iw_marginal,bound,parzen --margin=0.5 \
        --assignments || true
    done ;;
  table4)  # the H = 500 columns with one and three hidden layers (L=1 | L=3
    # alone with LAYERS=1 or LAYERS=3)
    for l in ${LAYERS:-1 3}; do
      sweep --sweep=configs/sweeps/table4.py "${REDUCED[@]}" \
        --where=model.num_layers=$l --where=model.hidden_dim=500 \
        --set=eval.iw_samples=100 --set=eval.iw_num_examples=500
    done
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=table4 ;;
  fig7)  # Fig. 7: K against Parzen, Table 4's protocol; one D at a time so
    # that a sweep cut short has every K of a D on all its seeds
    for d in 24 48 8; do
      sweep --sweep=configs/sweeps/fig7.py "${REDUCED[@]}" \
        --where=model.latent_dim=$d \
        --set=eval.iw_samples=100 --set=eval.iw_num_examples=500
    done
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=seeds ;;
  fig2)
    sweep --sweep=configs/sweeps/fig2.py "${REDUCED[@]}" \
      --set=eval.iw_samples=100 --set=eval.iw_num_examples=500
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=summary ;;
  fig6)  # Figs. 5, 6, 10: D = 2..20, 2-d overlapping epitomes; pictures, one seed
    sweep --sweep=configs/sweeps/fig6.py "${REDUCED[@]}" --seeds=1 \
      --set=eval.iw_samples=100 --set=eval.iw_num_examples=500
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=summary ;;
  assignment)  # Algorithm 1 vs per-step y*, the Fig. 3 eVAE, 10 epochs
    sweep --sweep=configs/sweeps/assignment.py "${REDUCED[@]}" \
      --set=eval.iw_samples=1000 --set=eval.iw_num_examples=1000
    "$PY" -m experiments.tables --root="$KEPT/$EXP" --table=summary ;;
  *) echo "unknown experiment $EXP: table2 | table2_stride | budget | remedies | iwae | fig3 | precision | precision_table2 | table4 | fig7 | fig2 | fig6 | assignment" >&2; exit 2 ;;
esac
