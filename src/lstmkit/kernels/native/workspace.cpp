// What forward and backward share outside the step loops: reading the arguments
// (Stack, DirectionWeights), the workspace's layout and the cache its buffers
// come from, and the step order of each direction.

#include "lstm.h"

#include <ATen/TensorOperators.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <mutex>

namespace lstmkit::native {
namespace {

Config make_config(const Tensor& x, const std::vector<OptionalTensor>& weights,
                   int64_t num_layers, bool bidirectional, bool save_for_backward) {
  TORCH_CHECK(x.dim() == 3, "x must be (T, B, I), got ", x.sizes());
  Config cfg{};
  cfg.T = x.size(0);
  cfg.B = x.size(1);
  cfg.input_size = x.size(2);
  cfg.L = num_layers;
  cfg.D = bidirectional ? 2 : 1;
  TORCH_CHECK(static_cast<int64_t>(weights.size()) == cfg.L * cfg.D * kFieldCount,
              "expected ", kFieldCount, " weight fields per layer and direction");
  const Tensor& weight_hh = weights[kWeightHH].value();
  TORCH_CHECK(x.device().is_cpu() && weight_hh.device().is_cpu(),
              "the native kernel runs on the CPU");
  TORCH_CHECK(weight_hh.scalar_type() == x.scalar_type(), "the input is ", x.scalar_type(),
              " but the weights are ", weight_hh.scalar_type());
  cfg.H = weight_hh.size(0) / 4;
  cfg.P = weight_hh.size(1);
  cfg.bias = weights[kBiasIH].has_value();
  cfg.proj = weights[kWeightHR].has_value();
  cfg.peephole = weights[kPeephole].has_value();
  cfg.layer_norm = weights[kLayerNormIH].has_value();
  cfg.save_for_backward = save_for_backward;
  return cfg;
}

// Keeps the big per-call buffers (workspace, backward scratch) from one call to the next.
// Freed and allocated again, each would come back from the OS as fresh pages, and at
// these sizes faulting them in costs as much as the GEMMs. A buffer is handed out again
// only once nothing refers to it any more (its storage has no other user), so a workspace
// the autograd graph still holds is never reused. At most kBuffers are kept.
class BufferCache {
 public:
  Tensor empty(int64_t numel, const at::TensorOptions& options) {
    const std::lock_guard<std::mutex> lock(mutex_);
    Tensor* spare = nullptr;
    for (Tensor& buffer : buffers_) {
      if (buffer.storage().use_count() != 1) continue;  // in use
      // reuse one big enough, but not one far bigger than needed
      if (buffer.dtype() == options.dtype() && buffer.numel() >= numel &&
          buffer.numel() <= 2 * numel) {
        return buffer.narrow(0, 0, numel);
      }
      spare = &buffer;
    }
    Tensor buffer = at::empty({numel}, options);
    if (spare != nullptr) {
      *spare = buffer;
    } else if (buffers_.size() < kBuffers) {
      buffers_.push_back(buffer);
    }
    return buffer.narrow(0, 0, numel);
  }

 private:
  static constexpr size_t kBuffers = 4;
  std::mutex mutex_;
  std::vector<Tensor> buffers_;
};

}  // namespace

Tensor cached_buffer(int64_t numel, const at::TensorOptions& options) {
  static BufferCache cache;
  return cache.empty(numel, options);
}

// Steps whose input term is computed at once when there is no backward to come: enough
// rows for an efficient GEMM, few enough that they are still in cache when the steps run.
int64_t input_chunk(const Config& cfg) {
  if (cfg.save_for_backward) return cfg.T;
  constexpr int64_t kRowsPerGemm = 256;
  return std::clamp<int64_t>((kRowsPerGemm + cfg.B - 1) / cfg.B, 1, cfg.T);
}

Workspace carve(const Config& cfg, Carver& carver) {
  const int64_t T = cfg.T, B = cfg.B, H = cfg.H, G = 4 * cfg.H;
  const int64_t S = cfg.save_for_backward ? T : 1;
  Workspace ws;
  for (int64_t k = 0; k < cfg.L * cfg.D; ++k) {
    Saved s;
    s.steps = S;
    s.gates = carver.take({input_chunk(cfg), B, G});
    s.c_prev = carver.take({S, B, H});
    s.tanh_c = carver.take({S, B, H});
    s.h_in = carver.take({S, B, cfg.P});
    if (cfg.layer_norm) {
      if (cfg.save_for_backward) {
        s.ih_hat = carver.take({T, B, G});
        s.ih_rstd = carver.take({T, B});
      }
      s.hh_hat = carver.take({S, B, G});
      s.hh_rstd = carver.take({S, B});
      s.c_hat = carver.take({S, B, H});
      s.c_rstd = carver.take({S, B});
    }
    ws.saved.push_back(s);
  }
  ws.layer_inputs.push_back(Tensor());  // layer 0 reads x itself
  for (int64_t layer = 1; layer < cfg.L; ++layer) {
    ws.layer_inputs.push_back(carver.take({T, B, cfg.D * cfg.P}));
  }
  return ws;
}

Tensor step_order_index(const StepTime& time, int64_t B) {
  Tensor index = at::empty({time.T * B}, at::kLong);
  int64_t* out = index.data_ptr<int64_t>();
  for (int64_t s = 0; s < time.T; ++s) {
    for (int64_t b = 0; b < B; ++b) out[s * B + b] = time.time(s, b) * B + b;
  }
  return index;
}

Tensor direction_input(const Tensor& layer_input, const StepTime& time, int64_t B) {
  Tensor rows = layer_input.view({time.T * B, layer_input.size(2)});
  return time.reversed ? rows.index_select(0, step_order_index(time, B)) : rows;
}

StepTime step_time(const std::optional<Tensor>& lengths, int64_t T, int64_t direction) {
  return StepTime{lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr, T, direction == 1};
}

Stack make_stack(const Tensor& x, std::vector<OptionalTensor> weights, int64_t num_layers,
                 bool bidirectional, const std::optional<Tensor>& lengths, Noise noise,
                 bool save_for_backward) {
  const at::NoGradGuard no_grad;  // the copies below are not for autograd to record
  Tensor contiguous = x.contiguous();
  const Config cfg = make_config(contiguous, weights, num_layers, bidirectional,
                                 save_for_backward);
  std::optional<Tensor> long_lengths;
  if (lengths.has_value()) long_lengths = lengths->to(at::kLong).contiguous();
  return Stack{std::move(contiguous), cfg, std::move(weights), std::move(noise),
               std::move(long_lengths)};
}

DirectionWeights::DirectionWeights(const std::vector<OptionalTensor>& all, int64_t k) {
  auto field = [&](Field f) {
    const OptionalTensor& w = all[k * kFieldCount + f];
    return w.has_value() ? w->contiguous() : Tensor();
  };
  weight_ih = field(kWeightIH);
  weight_hh = field(kWeightHH);
  weight_hr = field(kWeightHR);
  if (all[k * kFieldCount + kBiasIH].has_value()) bias = field(kBiasIH) + field(kBiasHH);
  peephole = field(kPeephole);
  layer_norm_ih = field(kLayerNormIH);
  layer_norm_hh = field(kLayerNormHH);
  layer_norm_cell_weight = field(kLayerNormCellWeight);
  layer_norm_cell_bias = field(kLayerNormCellBias);
}

}  // namespace lstmkit::native
