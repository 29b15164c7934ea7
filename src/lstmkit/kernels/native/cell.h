// The per-row arithmetic that the forward, backward and streaming passes share: the
// masks and per-unit parameters as raw rows, the activations, a row's layer norm, the
// row loop, and one sequence's cell at one step.

#pragma once

#include "lstm.h"

#include <ATen/Parallel.h>
#include <ATen/ops/full.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>

namespace lstmkit::native {

constexpr double kLayerNormEps = 1e-5;  // lstmkit.nn.cell.LAYER_NORM_EPS

// A pointwise pass runs on several threads only when each gets this many elements:
// below it, waking the thread pool costs more than it saves.
constexpr int64_t kElementsPerThread = 16384;

// A mask read one (step, sequence) row at a time: (T, B, N) per step, (B, N) the same for
// every step, or one constant row (zoneout's expectation at evaluation, 1 for "no mask").
template <typename scalar_t>
struct RowMask {
  Tensor values;
  const scalar_t* data;
  int64_t step_stride, batch_stride;
  bool constant;

  // shape: (T, B, N) for a mask per step, (B, N) for one mask per sequence
  RowMask(const OptionalTensor& mask, double fill, at::IntArrayRef shape, const Tensor& like) {
    const int64_t N = shape.back();
    if (mask.has_value()) {
      values = mask->contiguous();
      TORCH_CHECK(values.sizes() == shape, "a mask of shape ", values.sizes(), " where ", shape,
                  " was expected");
      batch_stride = N;
      step_stride = values.dim() == 3 ? values.size(1) * N : 0;
      constant = false;
    } else {
      values = at::full({N}, fill, like.options());
      batch_stride = step_stride = 0;
      constant = true;
    }
    data = values.data_ptr<scalar_t>();
  }
  const scalar_t* row(int64_t s, int64_t b) const {
    return data + s * step_stride + b * batch_stride;
  }
};

// Layer-direction k's masks (Noise), each read as rows.
template <typename scalar_t>
struct DirectionMasks {
  RowMask<scalar_t> recurrent, zoneout_c, zoneout_h;

  DirectionMasks(const Noise& noise, int64_t k, const Config& cfg, const Tensor& like)
      : recurrent(noise.recurrent[k], 1.0, {cfg.B, cfg.P}, like),
        zoneout_c(noise.zoneout_c[k], noise.zoneout_c_expected[k], {cfg.T, cfg.B, cfg.H}, like),
        zoneout_h(noise.zoneout_h[k], noise.zoneout_h_expected[k], {cfg.T, cfg.B, cfg.P}, like) {}
};

// Raw pointers to the per-unit parameters the pointwise passes read.
template <typename scalar_t>
struct CellParams {
  const scalar_t *p_i = nullptr, *p_f = nullptr, *p_o = nullptr;  // (H) each
  const scalar_t* hh_gain = nullptr;                               // (4H)
  const scalar_t *cell_gain = nullptr, *cell_bias = nullptr;       // (H) each
  int64_t H;

  CellParams(const DirectionWeights& w, int64_t H_) : H(H_) {
    if (w.peephole.defined()) {
      p_i = w.peephole.data_ptr<scalar_t>();
      p_f = p_i + H;
      p_o = p_i + 2 * H;
    }
    if (w.layer_norm_hh.defined()) {
      hh_gain = w.layer_norm_hh.data_ptr<scalar_t>();
      cell_gain = w.layer_norm_cell_weight.data_ptr<scalar_t>();
      cell_bias = w.layer_norm_cell_bias.data_ptr<scalar_t>();
    }
  }
};

// exp(-z) overflows float for z below about -88.7, and under -ffast-math (which assumes
// no infinities) the vector exp and reciprocal then give NaN, not 0: a streaming speech
// model reached gate pre-activations of -90 after 2,000 steps and its outputs turned NaN.
// Below -80, sigmoid is under 2e-35 whatever its exact value.
constexpr double kSigmoidFloor = -80.0;

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t z) {
  return scalar_t(1) / (scalar_t(1) + std::exp(-std::max(z, scalar_t(kSigmoidFloor))));
}

// The mean of one row of n and 1 / sqrt(var + eps) (biased variance, as F.layer_norm).
template <typename scalar_t>
std::pair<scalar_t, scalar_t> row_moments(const scalar_t* z, int64_t n) {
  scalar_t sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += z[j];
  const scalar_t mean = sum / n;
  scalar_t squares = 0;
  for (int64_t j = 0; j < n; ++j) squares += (z[j] - mean) * (z[j] - mean);
  return {mean, scalar_t(1) / std::sqrt(squares / n + scalar_t(kLayerNormEps))};
}

// hat = (z - mean) / sqrt(var + eps) over one row of n; returns 1 / sqrt(var + eps).
// hat may alias z.
template <typename scalar_t>
scalar_t normalise_row(const scalar_t* z, scalar_t* hat, int64_t n) {
  const auto [mean, rstd] = row_moments(z, n);
  for (int64_t j = 0; j < n; ++j) hat[j] = (z[j] - mean) * rstd;
  return rstd;
}

// f(b) for every sequence b, on several threads when the rows are long or many enough.
template <typename F>
void for_each_row(int64_t rows, int64_t row_size, const F& f) {
  const int64_t grain = std::max<int64_t>(1, kElementsPerThread / std::max<int64_t>(1, row_size));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) f(b);
  });
}

// One sequence's cell at one step. gates (4H) holds the pre-activations W_x x + W_h h + b
// and leaves with i, f, g, o; c (H) holds c_{t-1} and leaves with c_t after zoneout.
template <typename scalar_t, bool kHasPeephole, bool kHasLayerNorm>
void cell_forward_row(const CellParams<scalar_t>& w, scalar_t* __restrict gates,
                      scalar_t* __restrict c, const scalar_t* __restrict zoneout_c,
                      scalar_t* __restrict c_prev_saved, scalar_t* __restrict tanh_c_saved,
                      scalar_t* __restrict c_hat_saved, scalar_t* __restrict c_rstd_saved,
                      scalar_t* __restrict h_pre) {
  const int64_t H = w.H;
  scalar_t *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H;
  if constexpr (!kHasLayerNorm) {
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t cp = c[j];
      scalar_t z_i = i[j], z_f = f[j], z_o = o[j];
      if constexpr (kHasPeephole) {
        z_i += w.p_i[j] * cp;
        z_f += w.p_f[j] * cp;
      }
      const scalar_t i_j = sigmoid(z_i), f_j = sigmoid(z_f), g_j = std::tanh(g[j]);
      const scalar_t c_new = f_j * cp + i_j * g_j;
      if constexpr (kHasPeephole) z_o += w.p_o[j] * c_new;
      const scalar_t o_j = sigmoid(z_o), tanh_c = std::tanh(c_new);
      i[j] = i_j, f[j] = f_j, g[j] = g_j, o[j] = o_j;
      c_prev_saved[j] = cp;
      tanh_c_saved[j] = tanh_c;
      h_pre[j] = o_j * tanh_c;
      c[j] = zoneout_c[j] * cp + (1 - zoneout_c[j]) * c_new;
    }
  } else {
    // c_t first, into c_hat_saved: its normalisation needs the row's mean and variance
    scalar_t* c_new = c_hat_saved;
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t cp = c[j];
      scalar_t z_i = i[j], z_f = f[j];
      if constexpr (kHasPeephole) {
        z_i += w.p_i[j] * cp;
        z_f += w.p_f[j] * cp;
      }
      i[j] = sigmoid(z_i), f[j] = sigmoid(z_f), g[j] = std::tanh(g[j]);
      c_new[j] = f[j] * cp + i[j] * g[j];
      c_prev_saved[j] = cp;
      c[j] = zoneout_c[j] * cp + (1 - zoneout_c[j]) * c_new[j];
    }
    const auto [mean, rstd] = row_moments(c_new, H);
    *c_rstd_saved = rstd;
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t c_raw = c_new[j];
      scalar_t z_o = o[j];
      if constexpr (kHasPeephole) z_o += w.p_o[j] * c_raw;  // the peephole sees c_t unnormalised
      const scalar_t hat = (c_raw - mean) * rstd;
      const scalar_t tanh_c = std::tanh(hat * w.cell_gain[j] + w.cell_bias[j]);
      const scalar_t o_j = sigmoid(z_o);
      c_hat_saved[j] = hat;
      o[j] = o_j;
      tanh_c_saved[j] = tanh_c;
      h_pre[j] = o_j * tanh_c;
    }
  }
}

}  // namespace lstmkit::native
