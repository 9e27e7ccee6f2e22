"""``imcgen workload mlp``: a two-layer perceptron on the digits, across macros.

Dense 64 -> ``--hidden`` with ReLU, requantized in the first layer's macros to the next
layer's 5-bit inputs, then dense to the 10 classes; trained in float by scikit-learn's
``MLPClassifier`` on the bundled 8x8 digits. The papers report single-layer and CIFAR-10
figures only; the digits' float accuracy is the reference.
"""

SUMMARY = "two dense layers with ReLU and requantization between macros, on the digits"
CONFIG = True
RTL_DEFAULT = 8


def add_arguments(parser):
    from imcgen.apps import workloads as common
    from imcgen.apps.workloads.classifier import add_common

    parser.add_argument("--hidden", type=common.int_in(1, 1024), default=32,
                        help="hidden units (default 32)")
    add_common(parser)


def check(args):
    from imcgen.apps import mapping
    from imcgen.apps import workloads as common

    mapping.check_config(common.load(args))  # refused before any training


def model(X_train, y_train, hidden, seed, iterations=400):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    from imcgen.apps import mapping

    clf = MLPClassifier(hidden_layer_sizes=(hidden,), activation="relu", max_iter=iterations,
                        random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train / 16.0, y_train)
    (W1, W2), (b1, b2) = clf.coefs_, clf.intercepts_
    return mapping.Model([mapping.Layer("dense", W1, b1, True, name="fc1"),
                          mapping.Layer("dense", W2, b2, False, name="fc2")], (64,), 1 / 16.0,
                         "mlp-digits")


def run(args, out_dir, progress):
    from imcgen.apps import mapping
    from imcgen.apps import workloads as common
    from imcgen.apps.workloads.classifier import digits, evaluate

    cfg = common.load(args)
    X_train, X_test, y_train, y_test = digits(args.seed)
    net = model(X_train, y_train, args.hidden, args.seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    mapping.save_model(net, out_dir / "model.toml", out_dir / "model.npz")
    return evaluate(args, cfg, net, X_train, X_test, y_test, out_dir, progress,
                    f"MLP 64-{args.hidden}-10 on the 8x8 digits, across macros",
                    "- (papers: single layer)", "mlp")
