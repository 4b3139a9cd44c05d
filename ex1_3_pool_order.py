"""Exercise 1.3: the order of activation and max pooling.

Swap layers 2/3 and 5/6 of the Exercise 1.2 network (max pooling before the activation), for
ReLU and for tanh. Do you observe any difference in accuracy? Any difference in speed? Why?

Max pooling commutes with every non-decreasing function f: max(f(a), f(b)) = f(max(a, b)).
ReLU and tanh are both increasing, so the two orders compute the same function and, for the
same weights, the same gradients (tests/test_pool_order.py checks this); trained from the same
initial weights on the same batches the curves lie on top of each other. Pooling first applies
the activation to 4x fewer values, which saves time, more so for the costlier tanh: the
forward+backward time of each order is measured here on the same batches, timed in turn.

The ReLU, pool-after configuration is exactly Exercise 1.2's and comes from the run cache.

Run:   python ex1_3_pool_order.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex1_3_pool_order.json and report/figures/ex1_3_pool_order_{curves,timing}.{pdf,png}.
"""
import torch

import ex1_2_cnn
from common import cli, experiment, mnist, models, plotting, results, timing

ACTIVATIONS = ("relu", "tanh")
ORDERS = {"pool_after": False, "pool_first": True}  # name -> MnistCNN(pool_first=...)
TIMING_BATCHES = 50  # forward+backward batches per timed repeat
TIMING_WARMUP = 5
TIMING_REPEATS = 7  # the median over repeats is reported


def main(argv: list[str] | None = None) -> list[dict]:
    parser = cli.make_parser(__doc__, epochs=ex1_2_cnn.EPOCHS, batch_size=ex1_2_cnn.BATCH_SIZE, lr=ex1_2_cnn.LR,
                             num_seeds=ex1_2_cnn.NUM_SEEDS)
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = mnist.load_splits(ctx.data_dir, val_size=ex1_2_cnn.VAL_SIZE, seed=args.seed, device=ctx.device,
                               quick=ctx.quick, show_progress=ctx.show_progress)

    options = {f"{act}_{order}": {"activation": act, "pool_first": pool_first}
               for act in ACTIVATIONS for order, pool_first in ORDERS.items()}
    configs = [experiment.run_seeds(ex1_2_cnn.cnn_spec(args, name, **opts), splits, ctx.seeds, ctx.device,
                                    **ctx.run_kwargs())
               for name, opts in options.items()]
    for config, opts in zip(configs, options.values()):
        config["label"] = f"{opts['activation']}, pool {'first' if opts['pool_first'] else 'after'}"
        config["linestyle"] = ":" if opts["pool_first"] else "-"
        config["color"] = plotting.COLORS[ACTIVATIONS.index(opts["activation"])]
        print(results.summary_line(config) + f"; verdicts per seed: {config['summary']['verdicts']}")

    # Speed: forward+backward of the four networks on the same batches. Built one after another from one
    # seeded generator, each has weights of its own (the time does not depend on their values).
    torch.manual_seed(args.seed)
    timed = {name: models.MnistCNN(**opts) for name, opts in options.items()}
    steps_per_epoch = -(-len(splits.train[1]) // args.batch_size)
    quick = dict(num_batches=2, warmup=1, repeats=1) if ctx.quick else {}
    timings = timing.time_forward_backward(
        timed, splits.train[0], splits.train[1], batch_size=args.batch_size, steps_per_epoch=steps_per_epoch,
        **{"num_batches": TIMING_BATCHES, "warmup": TIMING_WARMUP, "repeats": TIMING_REPEATS, **quick})

    by_name = {c["name"]: c for c in configs}
    findings = {"forward_backward_timing": timings, "pool_after_over_pool_first_time": {}, "curve_differences": {}}
    for act in ACTIVATIONS:
        after, first = by_name[f"{act}_pool_after"], by_name[f"{act}_pool_first"]
        findings["pool_after_over_pool_first_time"][act] = {
            "forward_backward": timings[f"{act}_pool_after"]["per_batch_s"] / timings[f"{act}_pool_first"]["per_batch_s"],
            "training_epoch": (after["summary"]["train_time_per_epoch_s"]["mean"]
                               / first["summary"]["train_time_per_epoch_s"]["mean"])}
        findings["curve_differences"][act] = _curve_differences(after, first)
    findings["pool_first_vs_pool_after"] = {
        act: timing.paired_comparison(timings, f"{act}_pool_after", f"{act}_pool_first") for act in ACTIVATIONS}
    findings["tanh_over_relu_time"] = {
        order: timings[f"tanh_{order}"]["per_batch_s"] / timings[f"relu_{order}"]["per_batch_s"] for order in ORDERS}
    for act in ACTIVATIONS:
        ratio, diff = findings["pool_after_over_pool_first_time"][act], findings["curve_differences"][act]
        print(f"{act}: forward+backward {timings[f'{act}_pool_after']['per_epoch_s']:.2f} s/epoch (pool after) vs "
              f"{timings[f'{act}_pool_first']['per_epoch_s']:.2f} s/epoch (pool first): pool-after takes "
              f"{ratio['forward_backward']:.2f}x as long ({ratio['training_epoch']:.2f}x in the training runs); "
              f"largest difference between the two orders' curves: {diff['max_abs_iter_loss']:.2g} (training loss), "
              f"{diff['max_abs_val_accuracy']:.2g} (validation accuracy)")
    results.write_results(ctx, "ex1_3_pool_order", configs, splits.info, findings)
    plotting.plot_training_curves(
        configs, ctx.figures_dir, "ex1_3_pool_order_curves", loss_legend=False,
        title=f"Ex 1.3: activation before (solid) or after (dotted) max pooling, SGD lr={args.lr}, batch {args.batch_size}")
    plotting.plot_bars({options[name]["activation"] + (", pool first" if options[name]["pool_first"] else ", pool after"):
                        {"mean": t["per_epoch_s"], "min": min(t["per_batch_repeats_s"]) * steps_per_epoch,
                         "max": max(t["per_batch_repeats_s"]) * steps_per_epoch} for name, t in timings.items()},
                       ctx.figures_dir, "ex1_3_pool_order_timing", ylabel="forward+backward time per epoch (s)",
                       annotate="{:.2f} s", title=f"Ex 1.3: median of {timings['relu_pool_after']['repeats']} repeats "
                                                  f"(range shown), batch {args.batch_size}, {ctx.device.type}")
    return configs


def _curve_differences(a: dict, b: dict) -> dict:
    """Largest absolute differences between two configurations' curves, seed by seed."""
    def largest(key_fn):
        return max(abs(x - y) for ra, rb in zip(a["runs"], b["runs"]) for x, y in zip(key_fn(ra), key_fn(rb)))

    return {"max_abs_iter_loss": largest(lambda r: r["history"]["iter_loss"]),
            "max_abs_val_loss": largest(lambda r: [e["val_loss"] for e in r["history"]["epochs"]]),
            "max_abs_val_accuracy": largest(lambda r: [e["val_score"] for e in r["history"]["epochs"]]),
            "max_abs_test_accuracy": largest(lambda r: [r["test"]["accuracy"]])}


if __name__ == "__main__":
    cli.run(main)
