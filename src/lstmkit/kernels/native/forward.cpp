// The forward: every layer and direction over the whole sequence, saving what the
// backward needs into the workspace (lstm.h).

#include "blas.h"
#include "cell.h"
#include "lstm.h"

#include <ATen/Dispatch.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/mm.h>

#include <algorithm>

namespace lstmkit::native {
namespace {

// Scratch of one direction's forward, reused at every step.
struct ForwardScratch {
  Tensor h_pre;   // (B, H) o * tanh(c) before the projection
  Tensor h_cand;  // (B, P) h_pre W_hr^T with projection, else h_pre itself

  ForwardScratch(const Config& cfg, const Tensor& like) {
    h_pre = at::empty({cfg.B, cfg.H}, like.options());
    h_cand = cfg.proj ? at::empty({cfg.B, cfg.P}, like.options()) : h_pre;
  }
};

// One direction of one layer over all steps. input_rows (T * B, I) is in step order;
// h (B, P) and c (B, H) hold the initial state and leave with the final one; the
// direction's outputs go to columns [direction * P, (direction + 1) * P) of out
// (T, B, D * P), in input time order.
template <typename scalar_t, bool kHasPeephole, bool kHasLayerNorm>
void forward_direction(const Config& cfg, const DirectionWeights& w, const Tensor& input_rows,
                       const DirectionMasks<scalar_t>& masks, const StepTime& time,
                       int64_t direction, Saved& saved, Tensor& h, Tensor& c, Tensor& out) {
  const int64_t T = cfg.T, B = cfg.B, H = cfg.H, P = cfg.P, G = 4 * H, out_width = cfg.D * P;
  const CellParams<scalar_t> params(w, H);
  ForwardScratch scratch(cfg, h);

  // W_x x + b for the steps [first, first + n) at once: (n * B, I) @ (I, 4H) -> (n * B, 4H),
  // into the gates buffer's first n steps (all T of them when the backward keeps them)
  auto input_terms = [&](int64_t first, int64_t n) {
    Tensor x_terms = saved.gates.narrow(0, 0, n).view({n * B, G});
    Tensor rows = input_rows.narrow(0, first * B, n * B);
    if constexpr (kHasLayerNorm) {
      at::mm_out(x_terms, rows, w.weight_ih.t());
      scalar_t* z = x_terms.data_ptr<scalar_t>();
      scalar_t* hat = cfg.save_for_backward ? saved.ih_hat.data_ptr<scalar_t>() : nullptr;
      scalar_t* rstd = cfg.save_for_backward ? saved.ih_rstd.data_ptr<scalar_t>() : nullptr;
      const scalar_t* gain = w.layer_norm_ih.data_ptr<scalar_t>();
      const scalar_t* bias = w.bias.defined() ? w.bias.data_ptr<scalar_t>() : nullptr;
      for_each_row(n * B, G, [&](int64_t row) {
        scalar_t* z_row = z + row * G;
        const scalar_t row_rstd = normalise_row(z_row, z_row, G);
        if (hat) {
          std::copy_n(z_row, G, hat + (first * B + row) * G);
          rstd[first * B + row] = row_rstd;
        }
        for (int64_t j = 0; j < G; ++j) z_row[j] = z_row[j] * gain[j] + (bias ? bias[j] : 0);
      });
    } else if (w.bias.defined()) {
      at::addmm_out(x_terms, w.bias, rows, w.weight_ih.t());
    } else {
      at::mm_out(x_terms, rows, w.weight_ih.t());
    }
  };
  const int64_t chunk = saved.gates.size(0);

  scalar_t* gates = saved.gates.data_ptr<scalar_t>();
  scalar_t* c_prev = saved.c_prev.data_ptr<scalar_t>();
  scalar_t* tanh_c = saved.tanh_c.data_ptr<scalar_t>();
  scalar_t* h_in = saved.h_in.data_ptr<scalar_t>();
  scalar_t* hh_hat = kHasLayerNorm ? saved.hh_hat.data_ptr<scalar_t>() : nullptr;
  scalar_t* hh_rstd = kHasLayerNorm ? saved.hh_rstd.data_ptr<scalar_t>() : nullptr;
  scalar_t* c_hat = kHasLayerNorm ? saved.c_hat.data_ptr<scalar_t>() : nullptr;
  scalar_t* c_rstd = kHasLayerNorm ? saved.c_rstd.data_ptr<scalar_t>() : nullptr;
  scalar_t* h_state = h.data_ptr<scalar_t>();
  scalar_t* c_state = c.data_ptr<scalar_t>();
  scalar_t* h_pre = scratch.h_pre.data_ptr<scalar_t>();
  scalar_t* h_cand = scratch.h_cand.data_ptr<scalar_t>();
  scalar_t* output = out.data_ptr<scalar_t>();
  const scalar_t* weight_hh = w.weight_hh.data_ptr<scalar_t>();

  // h_in[s] = h_{s-1} * recurrent mask, written by the step before; h_in[0] from h0
  auto write_h_in = [&](int64_t s, int64_t b) {
    const scalar_t* mask = masks.recurrent.row(s, b);
    scalar_t* row = h_in + (saved.slot(s) * B + b) * P;
    for (int64_t j = 0; j < P; ++j) row[j] = h_state[b * P + j] * mask[j];
  };
  for (int64_t b = 0; b < B; ++b) write_h_in(0, b);

  for (int64_t s = 0; s < T; ++s) {
    if (s % chunk == 0) input_terms(s, std::min(chunk, T - s));
    scalar_t* step_gates = gates + (s % chunk) * B * G;
    // W_h h_{s-1}: (B, P) @ (P, 4H), added onto the input term (or apart, to be normalised)
    const int64_t slot = saved.slot(s);
    if constexpr (kHasLayerNorm) {
      matmul<scalar_t>(false, true, B, G, P, h_in + slot * B * P, P, weight_hh, P, 0,
                       hh_hat + slot * B * G, G);
    } else {
      matmul<scalar_t>(false, true, B, G, P, h_in + slot * B * P, P, weight_hh, P, 1,
                       step_gates, G);
    }
    for_each_row(B, G, [&](int64_t b) {
      scalar_t* gates_row = step_gates + b * G;
      const int64_t row = slot * B + b;  // in the per-step buffers
      if (!time.active(s, b)) {
        // the state holds; zeros keep the backward's sums over all rows clean
        std::fill_n(gates_row, G, scalar_t(0));
        std::fill_n(tanh_c + row * H, H, scalar_t(0));
        std::fill_n(h_pre + b * H, H, scalar_t(0));
        std::copy_n(c_state + b * H, H, c_prev + row * H);
        if constexpr (kHasLayerNorm) {
          std::fill_n(hh_hat + row * G, G, scalar_t(0));
          std::fill_n(c_hat + row * H, H, scalar_t(0));
          hh_rstd[row] = c_rstd[row] = 0;
        }
        return;
      }
      if constexpr (kHasLayerNorm) {
        scalar_t* hat = hh_hat + row * G;
        hh_rstd[row] = normalise_row(hat, hat, G);
        for (int64_t j = 0; j < G; ++j) gates_row[j] += hat[j] * params.hh_gain[j];
      }
      cell_forward_row<scalar_t, kHasPeephole, kHasLayerNorm>(
          params, gates_row, c_state + b * H, masks.zoneout_c.row(s, b), c_prev + row * H,
          tanh_c + row * H, kHasLayerNorm ? c_hat + row * H : nullptr,
          kHasLayerNorm ? c_rstd + row : nullptr, h_pre + b * H);
    });
    if (cfg.proj) {
      // h_cand = h_pre W_hr^T: (B, H) @ (H, P)
      matmul<scalar_t>(false, true, B, P, H, h_pre, H, w.weight_hr.data_ptr<scalar_t>(), H, 0,
                       h_cand, P);
    }
    for_each_row(B, P, [&](int64_t b) {
      scalar_t* h_row = h_state + b * P;
      scalar_t* out_row = output + (time.time(s, b) * B + b) * out_width + direction * P;
      if (time.active(s, b)) {
        const scalar_t* zoneout_h = masks.zoneout_h.row(s, b);
        const scalar_t* cand = h_cand + b * P;
        for (int64_t j = 0; j < P; ++j) {
          h_row[j] = zoneout_h[j] * h_row[j] + (1 - zoneout_h[j]) * cand[j];
          out_row[j] = h_row[j];
        }
      } else {
        std::fill_n(out_row, P, scalar_t(0));
      }
      if (s + 1 < T) write_h_in(s + 1, b);
    });
  }
}

}  // namespace

std::vector<Tensor> forward(const Stack& stack, const Tensor& h0, const Tensor& c0) {
  const at::NoGradGuard no_grad;  // the products inside are not for autograd to record
  const Tensor& x = stack.x;
  const Config& cfg = stack.cfg;
  const Noise& noise = stack.noise;
  const std::vector<int64_t> h_shape{cfg.L * cfg.D, cfg.B, cfg.P};
  const std::vector<int64_t> c_shape{cfg.L * cfg.D, cfg.B, cfg.H};
  const std::vector<int64_t> between_shape{cfg.T, cfg.B, cfg.D * cfg.P};
  TORCH_CHECK(h0.sizes() == at::IntArrayRef(h_shape) && c0.sizes() == at::IntArrayRef(c_shape),
              "h0 and c0 must be ", h_shape, " and ", c_shape, ", got ", h0.sizes(), " and ",
              c0.sizes());
  for (const OptionalTensor& mask : noise.between) {
    TORCH_CHECK(!mask.has_value() || mask->sizes() == at::IntArrayRef(between_shape),
                "a between-layer mask must be ", between_shape, ", got ", mask->sizes());
  }

  Carver counter;
  carve(cfg, counter);
  Tensor workspace = cached_buffer(counter.size(), x.options());
  Carver carver(workspace);
  Workspace ws = carve(cfg, carver);

  Tensor output = at::empty({cfg.T, cfg.B, cfg.D * cfg.P}, x.options());
  Tensor h_n = h0.contiguous().clone();
  Tensor c_n = c0.contiguous().clone();

  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lstmkit_native_forward", [&] {
    with_variant(cfg, [&](auto peephole, auto layer_norm) {
      Tensor layer_input = x;
      for (int64_t layer = 0; layer < cfg.L; ++layer) {
        const bool last = layer == cfg.L - 1;
        Tensor layer_output = last ? output : ws.layer_inputs[layer + 1];
        for (int64_t direction = 0; direction < cfg.D; ++direction) {
          const int64_t k = layer * cfg.D + direction;
          const StepTime time = step_time(stack.lengths, cfg.T, direction);
          Tensor h = h_n[k], c = c_n[k];
          forward_direction<scalar_t, decltype(peephole)::value, decltype(layer_norm)::value>(
              cfg, DirectionWeights(stack.weights, k), direction_input(layer_input, time, cfg.B),
              DirectionMasks<scalar_t>(noise, k, cfg, x), time, direction, ws.saved[k], h, c,
              layer_output);
        }
        if (!last && noise.between[layer].has_value()) layer_output.mul_(*noise.between[layer]);
        layer_input = layer_output;
      }
    });
  });
  return {output, h_n, c_n, workspace};
}

}  // namespace lstmkit::native
