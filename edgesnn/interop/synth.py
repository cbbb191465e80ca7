"""Random float SNNs of every flavour (neuron, reset, encoder, per-neuron parameters) that
actually spike on MNIST-like input — for interop tests and examples."""

from __future__ import annotations

import numpy as np

from edgesnn.interop.params import FloatLayer, FloatSNN


def random_float_snn(seed: int, *, input_size: int = 784, hidden: tuple[int, ...] = (24,),
                     n_classes: int = 10, steps: int = 8, neuron: str = "lif",
                     reset: str = "subtract", encoder: str = "rate",
                     per_neuron: bool = False, bias: bool = False) -> FloatSNN:
    """``bias`` gives every neuron a bias of up to a fifth of its threshold, either sign;
    ``neuron="cuba_lif"`` gives every layer a synaptic decay alpha in [0.3, 0.8]."""
    rng = np.random.default_rng(seed)
    sizes = [input_size, *hidden, n_classes]
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        count = n_out if per_neuron else 1
        w = rng.normal(0.0, 2.5 / np.sqrt(n_in), size=(n_out, n_in)).astype(np.float32)
        if encoder == "direct" and n_in == input_size:
            w *= 3.0  # pixels / 255 are smaller than spikes on average
        beta = (np.ones(count) if neuron == "if" else rng.uniform(0.7, 0.95, count))
        theta = rng.uniform(0.8, 1.2, count).astype(np.float32)
        b = rng.uniform(-0.2, 0.2, n_out).astype(np.float32) if bias else None
        alpha = None
        if neuron == "cuba_lif":
            alpha = rng.uniform(0.3, 0.8, count).astype(np.float32)
        layers.append(FloatLayer(weight=w, beta=beta.astype(np.float32), threshold=theta,
                                 bias=b, alpha=alpha))
    return FloatSNN(layers=layers, steps=steps, encoder=encoder, neuron=neuron,
                    reset=reset).validate()
