// StreamingStep (declared in lstm.h): one step of a unidirectional stack for inference.

#include "blas.h"
#include "cell.h"
#include "lstm.h"

#include <ATen/Dispatch.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/full.h>

namespace lstmkit::native {

StreamingStep::StreamingStep(const std::vector<OptionalTensor>& weights, int64_t num_layers,
                             std::vector<double> zoneout_c_expected,
                             std::vector<double> zoneout_h_expected)
    : zoneout_c_(std::move(zoneout_c_expected)), zoneout_h_(std::move(zoneout_h_expected)) {
  for (int64_t layer = 0; layer < num_layers; ++layer) layers_.emplace_back(weights, layer);
  const Tensor& weight_hh = layers_[0].weight_hh;
  H_ = weight_hh.size(0) / 4;
  P_ = weight_hh.size(1);
  for (int64_t layer = 1; layer < num_layers; ++layer) {
    TORCH_CHECK(layers_[layer].weight_ih.size(1) == P_,
                "streaming runs a unidirectional stack: layer ", layer, " must take ", P_,
                " inputs, its W_ih takes ", layers_[layer].weight_ih.size(1));
  }
}

template <typename F>
void StreamingStep::with_layer_norm(const F& f) const {
  if (layers_[0].layer_norm_ih.defined()) f(std::true_type{});
  else f(std::false_type{});
}

void StreamingStep::allocate_scratch(int64_t B, const Tensor& like) {
  const int64_t G = 4 * H_;
  scratch_ = at::empty({B, G + G + 4 * H_ + P_ + 1 + 1}, like.options());
  const auto constant_rows = [&](const std::vector<double>& values, int64_t n) {
    std::vector<Tensor> rows;
    for (double value : values) rows.push_back(at::full({n}, value, like.options()));
    return rows;
  };
  zoneout_c_rows_ = constant_rows(zoneout_c_, H_);
  zoneout_h_rows_ = constant_rows(zoneout_h_, P_);
}

template <typename scalar_t, bool kHasPeephole, bool kHasLayerNorm>
void StreamingStep::run(const Tensor& x, Tensor& h, Tensor& c) {
  const int64_t B = x.size(0), H = H_, P = P_, G = 4 * H;
  // per sequence, one row of scratch: x term and gates (4H), W_h h (4H), c_{t-1}, tanh c,
  // c_hat, h_pre (H each), h_cand (P), and the two layer-norm rstd
  scalar_t* scratch = scratch_.data_ptr<scalar_t>();
  const int64_t width = scratch_.size(1);
  auto row = [&](int64_t b, int64_t offset) { return scratch + b * width + offset; };
  const int64_t kGates = 0, kHh = G, kCPrev = 2 * G, kTanh = kCPrev + H, kCHat = kTanh + H,
                kHPre = kCHat + H, kHCand = kHPre + H, kHhRstd = kHCand + P, kCRstd = kHhRstd + 1;
  const scalar_t* input = x.data_ptr<scalar_t>();
  int64_t input_size = x.size(1);
  for (size_t layer = 0; layer < layers_.size(); ++layer) {
    const DirectionWeights& w = layers_[layer];
    const CellParams<scalar_t> params(w, H);
    scalar_t* h_layer = h.data_ptr<scalar_t>() + layer * B * P;
    scalar_t* c_layer = c.data_ptr<scalar_t>() + layer * B * H;
    const scalar_t* bias = w.bias.defined() ? w.bias.data_ptr<scalar_t>() : nullptr;
    // gates = W_x x (+ b), then + W_h h_{t-1}; with layer norm each term is normalised
    matmul<scalar_t>(false, true, B, G, input_size, input, input_size,
                     w.weight_ih.data_ptr<scalar_t>(), input_size, 0, row(0, kGates), width);
    matmul<scalar_t>(false, true, B, G, P, h_layer, P, w.weight_hh.data_ptr<scalar_t>(), P,
                     0, row(0, kHh), width);
    const scalar_t* zoneout_c = zoneout_c_rows_[layer].data_ptr<scalar_t>();
    const scalar_t* zoneout_h = zoneout_h_rows_[layer].data_ptr<scalar_t>();
    for (int64_t b = 0; b < B; ++b) {
      scalar_t* gates = row(b, kGates);
      scalar_t* hh = row(b, kHh);
      if constexpr (kHasLayerNorm) {
        const scalar_t* ih_gain = w.layer_norm_ih.data_ptr<scalar_t>();
        normalise_row(gates, gates, G);
        normalise_row(hh, hh, G);
        for (int64_t j = 0; j < G; ++j) {
          gates[j] = gates[j] * ih_gain[j] + (bias ? bias[j] : 0) + hh[j] * params.hh_gain[j];
        }
      } else {
        for (int64_t j = 0; j < G; ++j) gates[j] += (bias ? bias[j] : 0) + hh[j];
      }
      cell_forward_row<scalar_t, kHasPeephole, kHasLayerNorm>(
          params, gates, c_layer + b * H, zoneout_c, row(b, kCPrev), row(b, kTanh),
          row(b, kCHat), row(b, kCRstd), row(b, kHPre));
    }
    const scalar_t* h_cand = row(0, kHPre);
    if (w.weight_hr.defined()) {
      matmul<scalar_t>(false, true, B, P, H, row(0, kHPre), width,
                       w.weight_hr.data_ptr<scalar_t>(), H, 0, row(0, kHCand), width);
      h_cand = row(0, kHCand);
    }
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t j = 0; j < P; ++j) {
        h_layer[b * P + j] = zoneout_h[j] * h_layer[b * P + j] +
                             (1 - zoneout_h[j]) * h_cand[b * width + j];
      }
    }
    input = h_layer;
    input_size = P;
  }
}

Tensor StreamingStep::step(const Tensor& x_, Tensor& h, Tensor& c) {
  const at::NoGradGuard no_grad;
  const Tensor x = x_.contiguous();
  TORCH_CHECK(h.is_contiguous() && c.is_contiguous(), "the state must be contiguous");
  const int64_t B = x.size(0), L = static_cast<int64_t>(layers_.size());
  TORCH_CHECK(x.dim() == 2 && x.size(1) == layers_[0].weight_ih.size(1),
              "x_t must be (batch, ", layers_[0].weight_ih.size(1), "), got ", x.sizes());
  const std::vector<int64_t> h_shape{L, B, P_}, c_shape{L, B, H_};
  TORCH_CHECK(h.sizes() == at::IntArrayRef(h_shape) && c.sizes() == at::IntArrayRef(c_shape),
              "the state must be ", h_shape, " and ", c_shape);
  TORCH_CHECK(x.scalar_type() == h.scalar_type() && x.scalar_type() == c.scalar_type() &&
              x.scalar_type() == layers_[0].weight_hh.scalar_type(),
              "x_t, the state and the weights must share one dtype");
  if (!scratch_.defined() || scratch_.size(0) != B || scratch_.dtype() != x.dtype()) {
    allocate_scratch(B, x);
  }
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmkit_native_step", [&] {
    with_layer_norm([&](auto layer_norm) {
      constexpr bool kHasLayerNorm = decltype(layer_norm)::value;
      if (layers_[0].peephole.defined()) {
        run<scalar_t, true, kHasLayerNorm>(x, h, c);
      } else {
        run<scalar_t, false, kHasLayerNorm>(x, h, c);
      }
    });
  });
  return h[L - 1].clone();
}

}  // namespace lstmkit::native
