"""``imcgen workload cnn``: a small convolutional classifier on the digits through im2col.

A 3x3 convolution to ``--channels`` channels (each 8x8 image's 36 patches are the macro's
input vectors), ReLU, requantization in the macros, then a dense layer whose 36 x channels
inputs span several row blocks (their partial sums added by the combiner). Trained in float
with NumPy (full batch, Adam).
"""

SUMMARY = "a 3x3 convolution through im2col, ReLU, requantization and a dense layer, on the digits"
CONFIG = True
RTL_DEFAULT = 2


def add_arguments(parser):
    from imcgen.apps import workloads as common
    from imcgen.apps.workloads.classifier import add_common

    parser.add_argument("--channels", type=common.int_in(1, 64), default=8,
                        help="convolution channels (default 8)")
    parser.add_argument("--steps", type=common.int_in(1, 100_000), default=400,
                        help="training steps (default 400)")
    add_common(parser)


def check(args):
    from imcgen.apps import mapping
    from imcgen.apps import workloads as common

    mapping.check_config(common.load(args))  # refused before any training


def run(args, out_dir, progress):
    from imcgen.apps import mapping
    from imcgen.apps import workloads as common
    from imcgen.apps.workloads.classifier import digits, evaluate, train_cnn

    cfg = common.load(args)
    X_train, X_test, y_train, y_test = digits(args.seed)
    net = train_cnn(X_train, y_train, args.seed, args.channels, args.steps)
    out_dir.mkdir(parents=True, exist_ok=True)
    mapping.save_model(net, out_dir / "model.toml", out_dir / "model.npz")
    return evaluate(args, cfg, net, X_train, X_test, y_test, out_dir, progress,
                    f"CNN conv3x3x{args.channels}-fc10 on the 8x8 digits, im2col on the macro",
                    "- (papers: CIFAR-10 88.52 % on a 1 Mb RRAM macro)", "cnn")
