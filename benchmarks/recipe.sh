# The baseline's training recipe (docs/benchmarks.md), shared by the GPU scripts that train on
# its benchmarks: source it, then `baseline_recipe EVAL_EVERY` prints the options.
baseline_recipe() {
    echo "--train.batch_size=64 --train.compile=true --model.dropout=0.1 --optim.lr=1.5e-3
--optim.betas=0.9,0.95 --optim.weight_decay=0.1 --optim.grad_clip=1.0 --optim.warmup_steps=300 --eval.batch_size=64
--train.eval_every=${1:?eval_every} --train.eval_bytes=0 --train.log_every=50"
}
