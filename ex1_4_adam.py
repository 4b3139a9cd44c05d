"""Exercise 1.4: Adam instead of plain SGD.

Train the Exercise 1.2 network with torch.optim.Adam (PyTorch's default settings) and compare
it with Exercise 1.2's SGD: plot the loss and validation accuracy of both, against epochs and
against seconds of training. Do you get better results faster?

The SGD configuration is exactly Exercise 1.2's and comes from the run cache. Adam uses
lr=1e-3, betas=(0.9, 0.999), eps=1e-8, no weight decay (PyTorch's defaults; all recorded in the
results file), with the same network, initial weights, batches, batch size and epochs.

Run:   python ex1_4_adam.py --device cuda     (or --device cpu; --quick for a smoke test)
Writes report/results/ex1_4_adam.json and report/figures/ex1_4_adam_curves{,_time}.{pdf,png}.
"""
import dataclasses

import torch

import ex1_2_cnn
from common import cli, experiment, mnist, plotting, results

ADAM_LR = 1e-3  # PyTorch's default for Adam


def main(argv: list[str] | None = None) -> list[dict]:
    parser = cli.make_parser(__doc__, epochs=ex1_2_cnn.EPOCHS, batch_size=ex1_2_cnn.BATCH_SIZE, lr=ex1_2_cnn.LR,
                             num_seeds=ex1_2_cnn.NUM_SEEDS)
    parser.add_argument("--adam-lr", type=float, default=ADAM_LR, help="Adam's learning rate (default: %(default)s); "
                        "--lr is SGD's")
    ctx = cli.setup(parser, argv, __file__)
    args = ctx.args
    splits = mnist.load_splits(ctx.data_dir, val_size=ex1_2_cnn.VAL_SIZE, seed=args.seed, device=ctx.device,
                               quick=ctx.quick, show_progress=ctx.show_progress)

    sgd = ex1_2_cnn.cnn_spec(args, "cnn_sgd")
    adam = dataclasses.replace(sgd, name="cnn_adam", build_optimizer=lambda params: torch.optim.Adam(params, lr=args.adam_lr))
    configs = [experiment.run_seeds(spec, splits, ctx.seeds, ctx.device, **ctx.run_kwargs()) for spec in (sgd, adam)]
    configs[0]["label"], configs[1]["label"] = f"SGD lr={args.lr}", f"Adam lr={args.adam_lr}"

    findings = {"adam_hyperparameters": configs[1]["runs"][0]["hyperparameters"]["optimizer"]["param_groups"][0],
                "to_reach_sgd_final_val_accuracy": _time_to_reach(configs, configs[0]["summary"]["final_val_accuracy"]["mean"])}
    for config in configs:
        print(results.summary_line(config) + f"; verdicts per seed: {config['summary']['verdicts']}")
    reach = findings["to_reach_sgd_final_val_accuracy"]
    print(f"epochs (seconds of training) to reach SGD's final mean validation accuracy "
          f"{reach['target']:.2%}: " + ", ".join(f"{c['label']}: {reach[c['name']]['epoch']} ({reach[c['name']]['seconds']})"
                                                   for c in configs))
    results.write_results(ctx, "ex1_4_adam", configs, splits.info, findings)
    title = f"Ex 1.4: SGD vs Adam (PyTorch defaults), batch {args.batch_size}"
    plotting.plot_training_curves(configs, ctx.figures_dir, "ex1_4_adam_curves", title=title)
    plotting.plot_training_curves(configs, ctx.figures_dir, "ex1_4_adam_curves_time", title=title, x="time")
    return configs


def _time_to_reach(configs: list[dict], target: float) -> dict:
    """First epoch (and cumulative training seconds) at which each configuration's validation
    accuracy, averaged over seeds, reaches ``target``; None where it never does."""
    out = {"target": target}
    for config in configs:
        epochs = [r["history"]["epochs"] for r in config["runs"]]
        n = min(len(e) for e in epochs)
        val = [sum(e[k]["val_score"] for e in epochs) / len(epochs) for k in range(n)]
        secs = [sum(e[k]["train_time_s"] for e in epochs) / len(epochs) for k in range(n)]
        first = next((k for k in range(n) if val[k] >= target - 1e-12), None)
        out[config["name"]] = {"epoch": None if first is None else first + 1,
                               "seconds": None if first is None else round(sum(secs[:first + 1]), 2)}
    return out


if __name__ == "__main__":
    cli.run(main)
