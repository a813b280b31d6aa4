#!/bin/sh
# The runs behind docs/REPLAY.md (about 3 minutes, one core).  Data in /tmp/rp:
# make_pairs.py for Fashion-MNIST (see ../shared/data/README.md) and
# tools/replaystudy/make_digits.py for the digits.  B and D may be overridden.
set -e
# X: the phase 1 settings behind docs/REPLAY.md's tables; X= runs today's defaults.
X=${X-"--slice-flat 10 --decay round --max-rounds 30 --retries 0 --refit off"}
B=${B:-build/tools/replaystudy/replaystudy}; D=${D:-/tmp/rp}
F="--vec $D/fmnist_train.vec --pairs $D/fmnist_train_n200000_p50_s1.pairs --eval-vec $D/fmnist_t10k.vec --eval-pairs $D/fmnist_t10k_n20000_p50_s1.pairs --vary-init on --fresh-batch 256 $X"
G="--vec $D/digits_train.vec --pairs $D/digits_train_n20000_p50_s1.pairs --eval-vec $D/digits_test.vec --eval-pairs $D/digits_test_n10000_p50_s1.pairs --vary-init on --d-out 16 $X"
for n in 600 20000; do
  $B $F --n $n --seeds 5 --label fm-onepass
  $B $F --n $n --seeds 5 --replay on --label fm-gated
done
$B $F --n 200000 --seeds 3 --label fm-onepass
$B $F --n 200000 --seeds 3 --replay on --label fm-gated
# far too long: 100 rounds at constant lr, without and with the gate
$B $F --n 600 --seeds 5 --replay on --gate off --rounds 100 --lr-decay 1 --label fm-ungated100
$B $F --n 600 --seeds 5 --replay on --max-rounds 100 --lr-decay 1 --label fm-gated-max100
$B $F --n 20000 --seeds 3 --replay on --gate off --rounds 60 --lr-decay 1 --label fm-ungated60
$B $F --n 20000 --seeds 3 --replay on --max-rounds 60 --lr-decay 1 --label fm-gated-max60
# interleaved idle replay during the stream (2 steps per fresh batch), then the gated rounds
$B $F --n 20000 --seeds 5 --replay on --idle 2 --gate off --rounds 0 --label fm-idle2-only
$B $F --n 20000 --seeds 5 --replay on --idle 2 --label fm-idle2-gated
# slow feed: one pair per message (one-pair batches), fast run of the same pairs above
for n in 600 20000; do
  $B $F --n $n --seeds 5 --fresh-batch 1 --label fm-slow-nofill
  $B $F --n $n --seeds 5 --fresh-batch 1 --replay on --fill 64 --gate off --rounds 0 --label fm-slow-fill
  $B $F --n $n --seeds 5 --fresh-batch 1 --replay on --fill 64 --label fm-slow-fill-gated
done
# second data set: 8x8 digits, 64 -> 16
for n in 600 2000 20000; do
  $B $G --n $n --seeds 5 --label dg-onepass
  $B $G --n $n --seeds 5 --replay on --label dg-gated
done
$B $G --n 600 --seeds 5 --replay on --gate off --rounds 300 --lr-decay 1 --label dg-ungated300
$B $G --n 600 --seeds 5 --replay on --max-rounds 300 --lr-decay 1 --label dg-gated-max300
