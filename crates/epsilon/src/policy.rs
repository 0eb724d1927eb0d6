//! The policy network: one tanh hidden layer and a softmax over the base
//! portfolios, with hand-written gradients.
//!
//! Why not an ML framework: the network has a few hundred parameters, the
//! training set a few thousand weekly decisions, and the result must be
//! bit-reproducible from a seed. Forty lines of f64 arithmetic do that on
//! one thread, with nothing to install, and the gradients are checked
//! against finite differences in the tests.
//!
//! Parameters, flat: `W₁` (hidden × inputs, row-major), `b₁`, `W₂`
//! (outputs × hidden), `b₂`. With no hidden units the network is just `b₂`:
//! a constant mix (the "static learned mix").

use serde::{Deserialize, Serialize};

use crate::SplitMix64;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    pub inputs: usize,
    pub hidden: usize,
    pub outputs: usize,
    pub params: Vec<f64>,
}

/// What a forward pass keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct Pass {
    /// Hidden activations.
    pub hidden: Vec<f64>,
    /// The mix (softmax output).
    pub mix: Vec<f64>,
}

impl Mlp {
    pub fn param_count(inputs: usize, hidden: usize, outputs: usize) -> usize {
        if hidden == 0 {
            outputs
        } else {
            hidden * inputs + hidden + outputs * hidden + outputs
        }
    }

    /// Glorot-uniform first layer, a second layer 10× smaller (so the first
    /// mixes are close to uniform), zero biases.
    pub fn new(inputs: usize, hidden: usize, outputs: usize, rng: &mut SplitMix64) -> Mlp {
        let mut params = vec![0.0; Mlp::param_count(inputs, hidden, outputs)];
        if hidden > 0 {
            let a1 = (6.0 / (inputs + hidden) as f64).sqrt();
            for v in &mut params[..hidden * inputs] {
                *v = a1 * (2.0 * rng.next_f64() - 1.0);
            }
            let a2 = 0.1 * (6.0 / (hidden + outputs) as f64).sqrt();
            let w2 = hidden * inputs + hidden;
            for v in &mut params[w2..w2 + outputs * hidden] {
                *v = a2 * (2.0 * rng.next_f64() - 1.0);
            }
        }
        Mlp {
            inputs,
            hidden,
            outputs,
            params,
        }
    }

    fn offsets(&self) -> (usize, usize, usize) {
        let b1 = self.hidden * self.inputs;
        let w2 = b1 + self.hidden;
        let b2 = w2 + self.outputs * self.hidden;
        (b1, w2, b2)
    }

    /// Whether parameter `j` is a weight (penalised) rather than a bias.
    pub fn is_weight(&self, j: usize) -> bool {
        let (b1, w2, b2) = self.offsets();
        self.hidden > 0 && (j < b1 || (w2..b2).contains(&j))
    }

    pub fn forward(&self, x: &[f64]) -> Pass {
        debug_assert!(self.hidden == 0 || x.len() == self.inputs);
        let (b1, w2, b2) = self.offsets();
        let p = &self.params;
        let hidden: Vec<f64> = (0..self.hidden)
            .map(|j| {
                let row = &p[j * self.inputs..(j + 1) * self.inputs];
                (p[b1 + j] + row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>()).tanh()
            })
            .collect();
        let logits: Vec<f64> = (0..self.outputs)
            .map(|k| {
                let row = &p[w2 + k * self.hidden..w2 + (k + 1) * self.hidden];
                p[b2 + k] + row.iter().zip(&hidden).map(|(a, b)| a * b).sum::<f64>()
            })
            .collect();
        Pass {
            hidden,
            mix: softmax(&logits),
        }
    }

    /// Adds `∂J/∂θ` to `grad`, given `∂J/∂mix` for the pass of input `x`.
    pub fn backward(&self, x: &[f64], pass: &Pass, d_mix: &[f64], grad: &mut [f64]) {
        let (b1, w2, b2) = self.offsets();
        let p = &self.params;
        let m = &pass.mix;
        let inner: f64 = m.iter().zip(d_mix).map(|(a, b)| a * b).sum();
        let dz: Vec<f64> = (0..self.outputs)
            .map(|k| m[k] * (d_mix[k] - inner))
            .collect();
        for k in 0..self.outputs {
            grad[b2 + k] += dz[k];
            for j in 0..self.hidden {
                grad[w2 + k * self.hidden + j] += dz[k] * pass.hidden[j];
            }
        }
        for j in 0..self.hidden {
            let dh: f64 = (0..self.outputs)
                .map(|k| p[w2 + k * self.hidden + j] * dz[k])
                .sum();
            let da = dh * (1.0 - pass.hidden[j] * pass.hidden[j]);
            grad[b1 + j] += da;
            let row = &mut grad[j * self.inputs..(j + 1) * self.inputs];
            for (g, xi) in row.iter_mut().zip(x) {
                *g += da * xi;
            }
        }
    }
}

impl Mlp {
    /// `∂J/∂x` given `∂J/∂mix` for the pass of input `x`: which inputs
    /// move the mix, for explanations.
    pub fn input_gradient(&self, x: &[f64], pass: &Pass, d_mix: &[f64]) -> Vec<f64> {
        let (_, w2, _) = self.offsets();
        let p = &self.params;
        let m = &pass.mix;
        let inner: f64 = m.iter().zip(d_mix).map(|(a, b)| a * b).sum();
        let dz: Vec<f64> = (0..self.outputs)
            .map(|k| m[k] * (d_mix[k] - inner))
            .collect();
        let mut dx = vec![0.0; x.len()];
        for j in 0..self.hidden {
            let dh: f64 = (0..self.outputs)
                .map(|k| p[w2 + k * self.hidden + j] * dz[k])
                .sum();
            let da = dh * (1.0 - pass.hidden[j] * pass.hidden[j]);
            for (d, w) in dx
                .iter_mut()
                .zip(&p[j * self.inputs..(j + 1) * self.inputs])
            {
                *d += da * w;
            }
        }
        dx
    }
}

pub fn softmax(z: &[f64]) -> Vec<f64> {
    let max = z.iter().cloned().fold(f64::MIN, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - max).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Adam (Kingma and Ba 2015), as gradient *ascent*.
#[derive(Debug, Clone)]
pub struct Adam {
    m: Vec<f64>,
    v: Vec<f64>,
    t: i32,
    pub learning_rate: f64,
}

impl Adam {
    pub fn new(params: usize, learning_rate: f64) -> Adam {
        Adam {
            m: vec![0.0; params],
            v: vec![0.0; params],
            t: 0,
            learning_rate,
        }
    }

    pub fn ascend(&mut self, params: &mut [f64], grad: &[f64]) {
        const B1: f64 = 0.9;
        const B2: f64 = 0.999;
        self.t += 1;
        let c1 = 1.0 - B1.powi(self.t);
        let c2 = 1.0 - B2.powi(self.t);
        for j in 0..params.len() {
            self.m[j] = B1 * self.m[j] + (1.0 - B1) * grad[j];
            self.v[j] = B2 * self.v[j] + (1.0 - B2) * grad[j] * grad[j];
            params[j] += self.learning_rate * (self.m[j] / c1) / ((self.v[j] / c2).sqrt() + 1e-8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// J = Σ_k c_k · mix_k, a loss whose gradient in the mix is `c`.
    fn objective(net: &Mlp, x: &[f64], c: &[f64]) -> f64 {
        net.forward(x).mix.iter().zip(c).map(|(a, b)| a * b).sum()
    }

    #[test]
    fn gradients_match_finite_differences() {
        for hidden in [0usize, 3, 8] {
            let mut rng = SplitMix64::new(5 + hidden as u64);
            let mut net = Mlp::new(6, hidden, 4, &mut rng);
            // Non-zero biases and a larger second layer, so every path matters.
            for v in &mut net.params {
                *v += 0.3 * (rng.next_f64() - 0.5);
            }
            let x: Vec<f64> = (0..6).map(|_| 2.0 * rng.next_f64() - 1.0).collect();
            let c = [0.3, -1.2, 0.7, 2.0];
            let mut grad = vec![0.0; net.params.len()];
            let pass = net.forward(&x);
            net.backward(&x, &pass, &c, &mut grad);
            for (j, analytic) in grad.iter().enumerate() {
                let h = 1e-6;
                let mut up = net.clone();
                up.params[j] += h;
                let mut down = net.clone();
                down.params[j] -= h;
                let fd = (objective(&up, &x, &c) - objective(&down, &x, &c)) / (2.0 * h);
                assert!(
                    (fd - analytic).abs() <= 1e-8 + 1e-6 * fd.abs(),
                    "hidden {hidden}, parameter {j}: analytic {analytic} vs finite difference {fd}"
                );
            }
        }
    }

    #[test]
    fn input_gradients_match_finite_differences() {
        let mut rng = SplitMix64::new(21);
        let net = Mlp::new(5, 6, 4, &mut rng);
        let x: Vec<f64> = (0..5).map(|_| 2.0 * rng.next_f64() - 1.0).collect();
        let c = [1.0, -0.5, 0.25, 2.0];
        let dx = net.input_gradient(&x, &net.forward(&x), &c);
        for (i, analytic) in dx.iter().enumerate() {
            let h = 1e-6;
            let mut up = x.clone();
            up[i] += h;
            let mut down = x.clone();
            down[i] -= h;
            let fd = (objective(&net, &up, &c) - objective(&net, &down, &c)) / (2.0 * h);
            assert!(
                (fd - analytic).abs() <= 1e-9 + 1e-6 * fd.abs(),
                "input {i}: {analytic} vs {fd}"
            );
        }
    }

    #[test]
    fn the_mix_is_a_distribution_and_starts_near_uniform() {
        let mut rng = SplitMix64::new(1);
        let net = Mlp::new(10, 16, 4, &mut rng);
        let x: Vec<f64> = (0..10).map(|i| i as f64 / 5.0 - 1.0).collect();
        let m = net.forward(&x).mix;
        assert!((m.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(m.iter().all(|v| (v - 0.25).abs() < 0.1), "{m:?}");
        assert_eq!(softmax(&[1000.0, 0.0])[0], 1.0, "no overflow");
    }

    #[test]
    fn adam_climbs_a_concave_function() {
        let mut p = vec![3.0, -2.0];
        let mut adam = Adam::new(2, 0.1);
        for _ in 0..500 {
            let g: Vec<f64> = p.iter().map(|v| -2.0 * (v - 1.0)).collect();
            adam.ascend(&mut p, &g);
        }
        assert!(p.iter().all(|v| (v - 1.0).abs() < 1e-2), "{p:?}");
    }
}
