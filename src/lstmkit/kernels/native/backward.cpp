// The backward through time, by hand: every layer from the top, each direction from its
// last step back, reading what the forward saved in the workspace (lstm.h).

#include "blas.h"
#include "cell.h"
#include "lstm.h"

#include <ATen/Dispatch.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/zeros.h>

#include <algorithm>

namespace lstmkit::native {
namespace {

// The gradient through normalise_row then a gain: with d_hat = d_out * gain,
// d_z = rstd * (d_hat - mean(d_hat) - hat * mean(d_hat * hat)). d_z may alias d_out.
template <typename scalar_t>
void normalise_row_backward(const scalar_t* d_out, const scalar_t* gain, const scalar_t* hat,
                            scalar_t rstd, scalar_t* d_z, int64_t n) {
  scalar_t sum = 0, sum_hat = 0;
  for (int64_t j = 0; j < n; ++j) {
    sum += d_out[j] * gain[j];
    sum_hat += d_out[j] * gain[j] * hat[j];
  }
  const scalar_t mean = sum / n, mean_hat = sum_hat / n;
  for (int64_t j = 0; j < n; ++j) d_z[j] = rstd * (d_out[j] * gain[j] - mean - hat[j] * mean_hat);
}

// The gradient through one sequence's cell at one step. dh_pre (H) is dL/d(o * tanh c);
// dc (H) holds dL/dc_t (after zoneout) and leaves with dL/dc_{t-1}; dz (4H) receives
// dL/d(pre-activations). With layer norm, d_cell_gain and d_cell_bias (H) accumulate the
// gradients of LN(c)'s gain and bias.
template <typename scalar_t, bool kHasPeephole, bool kHasLayerNorm>
void cell_backward_row(const CellParams<scalar_t>& w, const scalar_t* __restrict gates,
                       const scalar_t* __restrict c_prev, const scalar_t* __restrict tanh_c,
                       const scalar_t* __restrict c_hat, scalar_t c_rstd,
                       const scalar_t* __restrict zoneout_c, const scalar_t* __restrict dh_pre,
                       scalar_t* __restrict dc, scalar_t* __restrict dz,
                       scalar_t* __restrict d_cell_gain, scalar_t* __restrict d_cell_bias) {
  const int64_t H = w.H;
  const scalar_t *i = gates, *f = gates + H, *g = gates + 2 * H, *o = gates + 3 * H;
  scalar_t *dz_i = dz, *dz_f = dz + H, *dz_g = dz + 2 * H, *dz_o = dz + 3 * H;
  // dL/d tanh's argument: LN(c_t) with layer norm, else c_t itself
  auto d_tanh_input = [&](int64_t j) { return dh_pre[j] * o[j] * (1 - tanh_c[j] * tanh_c[j]); };
  scalar_t mean_d_hat = 0, mean_d_hat_hat = 0;
  if constexpr (kHasLayerNorm) {
    // the normalisation's backward needs the row means of its incoming gradient first
    scalar_t sum = 0, sum_hat = 0;
    for (int64_t j = 0; j < H; ++j) {
      const scalar_t d = d_tanh_input(j);
      d_cell_gain[j] += d * c_hat[j];
      d_cell_bias[j] += d;
      sum += d * w.cell_gain[j];
      sum_hat += d * w.cell_gain[j] * c_hat[j];
    }
    mean_d_hat = sum / H;
    mean_d_hat_hat = sum_hat / H;
  }
  for (int64_t j = 0; j < H; ++j) {
    const scalar_t i_j = i[j], f_j = f[j], g_j = g[j], o_j = o[j], cp = c_prev[j];
    const scalar_t d_o = dh_pre[j] * tanh_c[j] * o_j * (1 - o_j);
    scalar_t dc_from_h;
    if constexpr (kHasLayerNorm) {
      dc_from_h = c_rstd * (d_tanh_input(j) * w.cell_gain[j] - mean_d_hat -
                            c_hat[j] * mean_d_hat_hat);
    } else {
      dc_from_h = d_tanh_input(j);
    }
    scalar_t dc_new = (1 - zoneout_c[j]) * dc[j] + dc_from_h;
    if constexpr (kHasPeephole) dc_new += d_o * w.p_o[j];
    const scalar_t d_i = dc_new * g_j * i_j * (1 - i_j);
    const scalar_t d_f = dc_new * cp * f_j * (1 - f_j);
    const scalar_t d_g = dc_new * i_j * (1 - g_j * g_j);
    scalar_t dc_prev = zoneout_c[j] * dc[j] + dc_new * f_j;
    if constexpr (kHasPeephole) dc_prev += d_i * w.p_i[j] + d_f * w.p_f[j];
    dz_i[j] = d_i, dz_f[j] = d_f, dz_g[j] = d_g, dz_o[j] = d_o;
    dc[j] = dc_prev;
  }
}

// dst[j] += a[j] * b[j] for j < n (dst[j] += a[j] when b is null).
template <typename scalar_t>
void accumulate(scalar_t* __restrict dst, const scalar_t* __restrict a,
                const scalar_t* __restrict b, int64_t n) {
  if (b == nullptr) {
    for (int64_t j = 0; j < n; ++j) dst[j] += a[j];
  } else {
    for (int64_t j = 0; j < n; ++j) dst[j] += a[j] * b[j];
  }
}

// Scratch of the backward, shared by every layer and direction (their sizes are equal).
// The per-unit parameters' gradients are summed per sequence while its rows are in
// cache, in per_sequence (B, .), and over the batch at the end.
struct BackwardScratch {
  Tensor dz;      // (T, B, 4H) dL/d(gate pre-activations), then dL/d(X W_ih^T)
  Tensor d_hh;    // (T, B, 4H) dL/d(W_h h) before its layer norm; dz itself without
  Tensor dh_cand; // (T, B, P) dL/d(h before zoneout), after the projection
  Tensor h_pre;   // projection: (T, B, H) o * tanh(c), for dL/dW_hr
  Tensor dh_pre;  // projection: (B, H) dL/d(o * tanh c); without, a step of dh_cand
  Tensor dh_in;   // (B, P) dL/d(h_{t-1} * mask), with a recurrent mask
  Tensor per_sequence;  // (B, 3H | 0 + 4H | 0 + 4H + 4H + H + H | 0): the sums below
  Tensor d_bias, d_peephole;                           // (B, 4H), (B, 3H)
  Tensor d_ln_ih, d_ln_hh, d_cell_gain, d_cell_bias;  // (B, 4H), (B, 4H), (B, H), (B, H)
};

BackwardScratch carve_backward_scratch(const Config& cfg, Carver& carver) {
  const int64_t T = cfg.T, B = cfg.B, H = cfg.H;
  BackwardScratch s;
  s.dz = carver.take({T, B, 4 * H});
  s.d_hh = cfg.layer_norm ? carver.take({T, B, 4 * H}) : s.dz;
  s.dh_cand = carver.take({T, B, cfg.P});
  if (cfg.proj) {
    s.h_pre = carver.take({T, B, H});
    s.dh_pre = carver.take({B, H});
  }
  s.dh_in = carver.take({B, cfg.P});
  const int64_t width = (cfg.bias ? 4 * H : 0) + (cfg.peephole ? 3 * H : 0) +
                        (cfg.layer_norm ? 10 * H : 0);
  s.per_sequence = carver.take({B, width});
  int64_t column = 0;
  auto columns = [&](int64_t n) {
    Tensor part = s.per_sequence.defined() ? s.per_sequence.narrow(1, column, n) : Tensor();
    column += n;
    return part;
  };
  if (cfg.bias) s.d_bias = columns(4 * H);
  if (cfg.peephole) s.d_peephole = columns(3 * H);
  if (cfg.layer_norm) {
    s.d_ln_ih = columns(4 * H);
    s.d_ln_hh = columns(4 * H);
    s.d_cell_gain = columns(H);
    s.d_cell_bias = columns(H);
  }
  return s;
}

// The gradients of one layer-direction's weights, one per Field (undefined where absent).
using WeightGrads = std::vector<Tensor>;

// The backward of forward_direction. grad_out (T, B, D * P) is dL/d(layer output);
// dh (B, P) and dc (B, H) hold dL/d(final state) and leave with dL/d(initial state).
// Adds dL/d(layer input) to d_input (T * B, I), in input time order, and fills grads.
template <typename scalar_t, bool kHasPeephole, bool kHasLayerNorm>
void backward_direction(const Config& cfg, const DirectionWeights& w, const Tensor& input_rows,
                        const DirectionMasks<scalar_t>& masks, const StepTime& time,
                        int64_t direction, const Saved& saved, const Tensor& grad_out,
                        BackwardScratch& scratch, Tensor& dh, Tensor& dc, Tensor& d_input,
                        WeightGrads& grads) {
  const int64_t T = cfg.T, B = cfg.B, H = cfg.H, P = cfg.P, G = 4 * H, out_width = cfg.D * P;
  const CellParams<scalar_t> params(w, H);

  const scalar_t* gates = saved.gates.data_ptr<scalar_t>();
  const scalar_t* c_prev = saved.c_prev.data_ptr<scalar_t>();
  const scalar_t* tanh_c = saved.tanh_c.data_ptr<scalar_t>();
  const scalar_t* hh_hat = kHasLayerNorm ? saved.hh_hat.data_ptr<scalar_t>() : nullptr;
  const scalar_t* hh_rstd = kHasLayerNorm ? saved.hh_rstd.data_ptr<scalar_t>() : nullptr;
  const scalar_t* c_hat = kHasLayerNorm ? saved.c_hat.data_ptr<scalar_t>() : nullptr;
  const scalar_t* c_rstd = kHasLayerNorm ? saved.c_rstd.data_ptr<scalar_t>() : nullptr;
  const scalar_t* g_out = grad_out.data_ptr<scalar_t>();
  scalar_t* dz = scratch.dz.data_ptr<scalar_t>();
  scalar_t* d_hh = scratch.d_hh.data_ptr<scalar_t>();
  scalar_t* dh_cand = scratch.dh_cand.data_ptr<scalar_t>();
  scalar_t* dh_in = scratch.dh_in.data_ptr<scalar_t>();
  const scalar_t* ih_hat = kHasLayerNorm ? saved.ih_hat.data_ptr<scalar_t>() : nullptr;
  const scalar_t* ih_rstd = kHasLayerNorm ? saved.ih_rstd.data_ptr<scalar_t>() : nullptr;
  const scalar_t* ih_gain = kHasLayerNorm ? w.layer_norm_ih.data_ptr<scalar_t>() : nullptr;
  scratch.per_sequence.zero_();
  // per sequence b, row b of each (B, n) sum; null where that parameter is absent
  auto sums = [&](const Tensor& t) { return t.defined() ? t.data_ptr<scalar_t>() : nullptr; };
  scalar_t* d_bias = sums(scratch.d_bias);
  scalar_t* d_peephole = sums(scratch.d_peephole);
  scalar_t* d_ln_ih = sums(scratch.d_ln_ih);
  scalar_t* d_ln_hh = sums(scratch.d_ln_hh);
  scalar_t* d_cell_gain = sums(scratch.d_cell_gain);
  scalar_t* d_cell_bias = sums(scratch.d_cell_bias);
  const int64_t sums_width = scratch.per_sequence.stride(0);
  scalar_t* dh_state = dh.data_ptr<scalar_t>();
  scalar_t* dc_state = dc.data_ptr<scalar_t>();
  const scalar_t* weight_hh = w.weight_hh.data_ptr<scalar_t>();

  for (int64_t s = T - 1; s >= 0; --s) {
    // through zoneout on h: dh_cand = (1 - z_h) dh, and z_h dh flows straight to h_{s-1}
    for_each_row(B, P, [&](int64_t b) {
      scalar_t* cand = dh_cand + (s * B + b) * P;
      if (!time.active(s, b)) {
        std::fill_n(cand, P, scalar_t(0));
        return;
      }
      const scalar_t* zoneout_h = masks.zoneout_h.row(s, b);
      const scalar_t* from_out = g_out + (time.time(s, b) * B + b) * out_width + direction * P;
      scalar_t* dh_row = dh_state + b * P;
      for (int64_t j = 0; j < P; ++j) {
        const scalar_t total = dh_row[j] + from_out[j];
        cand[j] = (1 - zoneout_h[j]) * total;
        dh_row[j] = zoneout_h[j] * total;
      }
    });
    scalar_t* dh_pre = dh_cand + s * B * P;
    if (cfg.proj) {
      // through the projection: (B, P) @ (P, H)
      dh_pre = scratch.dh_pre.data_ptr<scalar_t>();
      matmul<scalar_t>(false, false, B, H, P, dh_cand + s * B * P, P,
                       w.weight_hr.data_ptr<scalar_t>(), H, 0, dh_pre, H);
    }
    for_each_row(B, G, [&](int64_t b) {
      const int64_t row = s * B + b;
      scalar_t* dz_row = dz + row * G;
      if (!time.active(s, b)) {
        std::fill_n(dz_row, G, scalar_t(0));
        if constexpr (kHasLayerNorm) std::fill_n(d_hh + row * G, G, scalar_t(0));
        return;
      }
      const int64_t sums_row = b * sums_width;
      cell_backward_row<scalar_t, kHasPeephole, kHasLayerNorm>(
          params, gates + row * G, c_prev + row * H, tanh_c + row * H,
          kHasLayerNorm ? c_hat + row * H : nullptr, kHasLayerNorm ? c_rstd[row] : scalar_t(0),
          masks.zoneout_c.row(s, b), dh_pre + b * H, dc_state + b * H, dz_row,
          kHasLayerNorm ? d_cell_gain + sums_row : nullptr,
          kHasLayerNorm ? d_cell_bias + sums_row : nullptr);
      // the per-unit parameters, while the row is in cache
      if (d_bias) accumulate<scalar_t>(d_bias + sums_row, dz_row, nullptr, G);
      if constexpr (kHasPeephole) {
        // p_i and p_f see c_{t-1}; p_o sees c_t = f c_{t-1} + i g
        const scalar_t* gate = gates + row * G;
        const scalar_t* cp = c_prev + row * H;
        scalar_t* d_p = d_peephole + sums_row;
        accumulate<scalar_t>(d_p, dz_row, cp, H);
        accumulate<scalar_t>(d_p + H, dz_row + H, cp, H);
        for (int64_t j = 0; j < H; ++j) {
          d_p[2 * H + j] += dz_row[3 * H + j] * (gate[H + j] * cp[j] + gate[j] * gate[2 * H + j]);
        }
      }
      if constexpr (kHasLayerNorm) {
        accumulate<scalar_t>(d_ln_hh + sums_row, dz_row, hh_hat + row * G, G);
        normalise_row_backward(dz_row, params.hh_gain, hh_hat + row * G, hh_rstd[row],
                               d_hh + row * G, G);
        // dz becomes dL/d(X W_ih^T), through the input term's layer norm
        accumulate<scalar_t>(d_ln_ih + sums_row, dz_row, ih_hat + row * G, G);
        normalise_row_backward(dz_row, ih_gain, ih_hat + row * G, ih_rstd[row], dz_row, G);
      }
    });
    // through W_hh into h_{s-1}: (B, 4H) @ (4H, P), through the recurrent mask if any
    if (!masks.recurrent.constant) {
      matmul<scalar_t>(false, false, B, P, G, d_hh + s * B * G, G, weight_hh, P, 0, dh_in, P);
      for_each_row(B, P, [&](int64_t b) {
        const scalar_t* mask = masks.recurrent.row(s, b);
        for (int64_t j = 0; j < P; ++j) dh_state[b * P + j] += mask[j] * dh_in[b * P + j];
      });
    } else {
      matmul<scalar_t>(false, false, B, P, G, d_hh + s * B * G, G, weight_hh, P, 1, dh_state, P);
    }
  }

  // the weight gradients of all steps at once
  const int64_t rows = cfg.rows();
  Tensor dz_rows = scratch.dz.view({rows, G});
  grads[kWeightHH] = at::mm(scratch.d_hh.view({rows, G}).t(), saved.h_in.view({rows, P}));
  if (cfg.proj) {
    // h_pre = o * tanh(c) again, rather than saved: (T, B, H)
    at::mul_out(scratch.h_pre, saved.gates.narrow(2, 3 * H, H), saved.tanh_c);
    grads[kWeightHR] = at::mm(scratch.dh_cand.view({rows, P}).t(), scratch.h_pre.view({rows, H}));
  }
  if (cfg.bias) {
    grads[kBiasIH] = scratch.d_bias.sum(0);
    grads[kBiasHH] = grads[kBiasIH].clone();
  }
  if constexpr (kHasPeephole) grads[kPeephole] = scratch.d_peephole.sum(0).view({3, H});
  if constexpr (kHasLayerNorm) {
    grads[kLayerNormIH] = scratch.d_ln_ih.sum(0);
    grads[kLayerNormHH] = scratch.d_ln_hh.sum(0);
    grads[kLayerNormCellWeight] = scratch.d_cell_gain.sum(0);
    grads[kLayerNormCellBias] = scratch.d_cell_bias.sum(0);
  }
  grads[kWeightIH] = at::mm(dz_rows.t(), input_rows);
  if (time.reversed) {
    d_input.index_add_(0, step_order_index(time, B), at::mm(dz_rows, w.weight_ih));
  } else {
    at::addmm_out(d_input, d_input, dz_rows, w.weight_ih);
  }
}

}  // namespace

std::vector<Tensor> backward(const Stack& stack, const Tensor& grad_output,
                             const Tensor& grad_h_n, const Tensor& grad_c_n,
                             const Tensor& workspace) {
  const at::NoGradGuard no_grad;
  const Tensor& x = stack.x;
  const Config& cfg = stack.cfg;
  Carver carver(workspace);
  const Workspace ws = carve(cfg, carver);

  Tensor dh0 = grad_h_n.contiguous().clone();  // per direction: dL/d h_n in, dL/d h0 out
  Tensor dc0 = grad_c_n.contiguous().clone();
  std::vector<Tensor> weight_grads(stack.weights.size());
  Tensor d_layer_input;

  Carver counter;
  carve_backward_scratch(cfg, counter);
  Carver scratch_carver(cached_buffer(counter.size(), x.options()));
  BackwardScratch scratch = carve_backward_scratch(cfg, scratch_carver);

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmkit_native_backward", [&] {
    with_variant(cfg, [&](auto peephole, auto layer_norm) {
      Tensor d_layer_output = grad_output.contiguous();
      for (int64_t layer = cfg.L - 1; layer >= 0; --layer) {
        const Tensor& layer_input = layer == 0 ? x : ws.layer_inputs[layer];
        d_layer_input = at::zeros({cfg.T, cfg.B, cfg.layer_input_size(layer)}, x.options());
        Tensor d_input_rows = d_layer_input.view({cfg.rows(), cfg.layer_input_size(layer)});
        for (int64_t direction = 0; direction < cfg.D; ++direction) {
          const int64_t k = layer * cfg.D + direction;
          const StepTime time = step_time(stack.lengths, cfg.T, direction);
          WeightGrads grads(kFieldCount);
          Tensor dh = dh0[k], dc = dc0[k];
          backward_direction<scalar_t, decltype(peephole)::value, decltype(layer_norm)::value>(
              cfg, DirectionWeights(stack.weights, k), direction_input(layer_input, time, cfg.B),
              DirectionMasks<scalar_t>(stack.noise, k, cfg, x), time, direction, ws.saved[k],
              d_layer_output, scratch, dh, dc, d_input_rows, grads);
          for (int64_t f = 0; f < kFieldCount; ++f) weight_grads[k * kFieldCount + f] = grads[f];
        }
        if (layer > 0 && stack.noise.between[layer - 1].has_value()) {
          d_layer_input.mul_(*stack.noise.between[layer - 1]);
        }
        d_layer_output = d_layer_input;
      }
    });
  });
  for (auto& grad : weight_grads) {
    if (!grad.defined()) grad = at::empty({0}, x.options());
  }
  std::vector<Tensor> result{d_layer_input, dh0, dc0};
  result.insert(result.end(), weight_grads.begin(), weight_grads.end());
  return result;
}

}  // namespace lstmkit::native
