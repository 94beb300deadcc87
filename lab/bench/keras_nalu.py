"""Keras 3 (TensorFlow backend) timing of the NALU benchmarks (see bench/compare.sh).

The toy step is what the Keras reference runs (`train_on_batch` of a compiled model: forward,
MSE, backward, RMSProp with rho 0.9 and epsilon 1e-7); the large case is one forward+backward
with weight gradients inside a `tf.function`. Prints one JSON object.
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import keras  # noqa: E402
from keras import ops  # noqa: E402

from blocks import median_seconds  # noqa: E402


class Nalu(keras.layers.Layer):
    def __init__(self, units, eps=1e-7, **kwargs):
        super().__init__(**kwargs)
        self.units, self.eps = units, eps

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        init = keras.initializers.GlorotUniform()
        self.w_hat = self.add_weight(shape=shape, initializer=init, name="w_hat")
        self.m_hat = self.add_weight(shape=shape, initializer=init, name="m_hat")
        self.gate = self.add_weight(shape=shape, initializer=init, name="gate")

    def call(self, x):
        w = ops.tanh(self.w_hat) * ops.sigmoid(self.m_hat)
        a = ops.matmul(x, w)
        m = ops.exp(ops.matmul(ops.log(ops.abs(x) + self.eps), w))
        g = ops.sigmoid(ops.matmul(x, self.gate))
        return g * a + (1 - g) * m


def toy_step_seconds(per_block, warmup):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((100,)), Nalu(2), Nalu(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(0.01, rho=0.9, epsilon=1e-7), loss="mse")
    x = np.random.rand(64, 100).astype("float32")
    y = x.sum(axis=1, keepdims=True)
    return median_seconds(lambda: model.train_on_batch(x, y), per_block, warmup)


def large_seconds(warmup):
    keras.utils.set_random_seed(0)
    layer = Nalu(1024)
    x = tf.constant(np.random.rand(4096, 1024).astype("float32"))
    layer.build(x.shape)

    @tf.function
    def fwd_bwd():
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, layer.trainable_variables)

    return median_seconds(lambda: [g.numpy() for g in fwd_bwd()], 1, warmup)


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    threads = int(os.environ.get("BENCH_THREADS", "1"))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    if "--large" in sys.argv:
        result = {"large_fwd_bwd_s": large_seconds(1 if quick else 2)}
    else:
        result = {"toy_step_s": toy_step_seconds(20 if quick else 200, 50 if quick else 200)}
    result["framework"] = f"Keras {keras.__version__} / TensorFlow {tf.__version__}"
    print(json.dumps(result))
