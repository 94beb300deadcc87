//! A minimal static-toy run: learn `y = a + b` where `a` and `b` are sums over two halves of 100
//! inputs, then test on inputs doubled. The full experiment suite comes with the experiments module.

use burn::optim::{GradientsParams, RmsPropConfig};
use burn::prelude::*;
use burn::tensor::Distribution;
use burn_nalu::{Nalu, NaluConfig};

#[derive(Module, Debug)]
struct Model {
    hidden: Nalu,
    output: Nalu,
}

impl Model {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        self.output.forward(self.hidden.forward(x))
    }
}

fn target(x: Tensor<2>) -> Tensor<2> {
    x.sum_dim(1)
}

fn main() {
    let device = Device::default().autodiff();
    device.seed(0);
    let mut model = Model {
        hidden: NaluConfig::new(100, 2).init(&device),
        output: NaluConfig::new(2, 1).init(&device),
    };
    let mut optim = RmsPropConfig::new()
        .with_alpha(0.9)
        .with_momentum(0.0)
        .with_epsilon(1e-7)
        .init();
    let x = Tensor::<2>::random([1000, 100], Distribution::Default, &device);
    let y = target(x.clone());
    for step in 0..=2000 {
        let loss = (model.forward(x.clone()) - y.clone()).powi_scalar(2).mean();
        if step % 500 == 0 {
            println!(
                "step {step:>4}: train MSE {:.6}",
                loss.clone().into_scalar::<f32>()
            );
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(0.05, model, grads);
    }
    let x_test = x.mul_scalar(2.0);
    let y_test = target(x_test.clone());
    let mse = (model.forward(x_test) - y_test).powi_scalar(2).mean();
    println!(
        "extrapolation MSE (inputs doubled): {:.6}",
        mse.into_scalar::<f32>()
    );
}
