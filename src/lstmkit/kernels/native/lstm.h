// lstmkit's native LSTM kernel for the CPU: a stacked, optionally bidirectional LSTM
// with every variant of lstmkit.nn.LSTM, forward and backward through time.
//
// This header is the interface shared by the sources beside it (README.md says which
// file holds what, and the algorithm in full). In short, per layer and direction:
//   forward:  one GEMM for the input term of all steps, then per step one GEMM
//             (h_{t-1} W_hh^T, plus h W_hr^T with projection) and one fused
//             pointwise pass over the batch;
//   backward: per step one pointwise pass and one GEMM (two with projection),
//             then the weight gradients of all steps as one GEMM each.
// Time inside a direction is the processing step: the backward direction reads its
// input reversed within each sequence's length, so every per-step buffer below is
// contiguous per step.
//
// Buffers. T steps, B sequences, I inputs, H cell units, P outputs (proj_size or H),
// L layers, D directions; layer-direction k = layer * D + direction. Every 4H row holds
// the gates in the order i, f, g, o (H each). Inside the kernel every tensor is
// contiguous and row-major (the arguments are made so).
//   x (T, B, I), h0 (L * D, B, P), c0 (L * D, B, H)   read only
//   weights         L * D * kFieldCount optional tensors, Field order (below)
//   output          (T, B, D * P), new; direction d writes columns [d * P, (d + 1) * P)
//                   at input time, 0 past a sequence's length
//   h_n, c_n        new copies of h0, c0 that hold the running state of each
//                   layer-direction during the forward (h_n[k], c_n[k]) and leave final
//   workspace       1-D, laid out by carve(): what the forward saves for the backward
//                   (Saved, per k, then the inputs of layers 1..L-1); complete only with
//                   save_for_backward. A view of a cached buffer (cached_buffer), handed
//                   out again only once nothing holds it
//   backward scratch  from cached_buffer too, laid out and used in backward.cpp
// Rows of inactive steps (s >= length) are written with zeros (c_prev with the held
// state), so the backward's sums over all rows stay clean.

#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <optional>
#include <type_traits>
#include <vector>

namespace lstmkit::native {

using at::Tensor;
using OptionalTensor = std::optional<Tensor>;

// Fields of one layer-direction's weights, in lstmkit.nn.cell.LSTMWeights order; an
// absent field (a variant off) is absent in every layer-direction.
enum Field : int64_t {
  kWeightIH,            // (4H, I)
  kWeightHH,            // (4H, P)
  kBiasIH,              // (4H)
  kBiasHH,              // (4H)
  kWeightHR,            // (P, H)
  kPeephole,            // (3, H): p_i, p_f, p_o
  kLayerNormIH,         // (4H) gain on W_x x
  kLayerNormHH,         // (4H) gain on W_h h
  kLayerNormCellWeight, // (H)
  kLayerNormCellBias,   // (H)
  kFieldCount,
};

// Sizes of the whole stack, which variants are on (read off which weights are present),
// and whether the forward keeps what the backward needs.
struct Config {
  int64_t T, B, input_size, H, P, L, D;
  bool bias, proj, peephole, layer_norm;
  bool save_for_backward;

  int64_t layer_input_size(int64_t layer) const { return layer == 0 ? input_size : D * P; }
  int64_t rows() const { return T * B; }
};

// Calls f(peephole_tag, layer_norm_tag) with std::bool_constant tags for the variant on.
template <typename F>
void with_variant(const Config& cfg, const F& f) {
  if (cfg.peephole && cfg.layer_norm) f(std::true_type{}, std::true_type{});
  else if (cfg.peephole) f(std::true_type{}, std::false_type{});
  else if (cfg.layer_norm) f(std::false_type{}, std::true_type{});
  else f(std::false_type{}, std::false_type{});
}

// ---- the workspace ------------------------------------------------------------------------

// Hands out consecutive views of one flat buffer; without a buffer it only counts its size.
class Carver {
 public:
  explicit Carver(Tensor flat = Tensor()) : flat_(std::move(flat)) {}

  Tensor take(at::IntArrayRef shape) {
    int64_t numel = 1;
    for (int64_t n : shape) numel *= n;
    Tensor view;
    if (flat_.defined()) view = flat_.narrow(0, offset_, numel).view(shape);
    offset_ += numel;
    return view;
  }
  int64_t size() const { return offset_; }

 private:
  Tensor flat_;
  int64_t offset_ = 0;
};

// A flat buffer of numel elements for the per-call buffers (workspace, backward scratch),
// kept from one call to the next (see BufferCache in workspace.cpp): it may hold stale
// values, and is handed out again only once nothing refers to it any more.
Tensor cached_buffer(int64_t numel, const at::TensorOptions& options);

// What the forward saves for the backward, per layer and direction; indexed by step.
// Without a backward to come, the per-step buffers hold one step (S = 1), reused by all,
// and the gates a chunk of K steps whose input term is computed at once (see input_chunk).
struct Saved {
  Tensor gates;    // (T | K, B, 4H) i, f, g, o after their activations (first W_x x + b)
  Tensor c_prev;   // (S, B, H) c_{t-1}
  Tensor tanh_c;   // (S, B, H) tanh(c_t), or tanh(LN(c_t)) with layer norm
  Tensor h_in;     // (S, B, P) h_{t-1} as it enters W_hh (after the recurrent dropout mask)
  Tensor ih_hat;   // layer norm: (T, B, 4H) normalised W_x x; only with a backward to come
  Tensor ih_rstd;  //             (T, B)
  Tensor hh_hat;   //             (S, B, 4H) normalised W_h h_{t-1}
  Tensor hh_rstd;  //             (S, B)
  Tensor c_hat;    //             (S, B, H) normalised c_t
  Tensor c_rstd;   //             (S, B)
  int64_t steps;   // S: T, or 1 without a backward

  // The slot of step s in the per-step buffers.
  int64_t slot(int64_t s) const { return steps == 1 ? 0 : s; }
};

struct Workspace {
  std::vector<Saved> saved;          // per layer * D + direction
  std::vector<Tensor> layer_inputs;  // per layer but the first: (T, B, D * P), after dropout
};

// K: the steps whose input term is computed at once (T with a backward to come).
int64_t input_chunk(const Config& cfg);

// The workspace's layout, in this order (lstmkit.kernels.native.workspace_numel counts
// it for torch.compile's fake tensors): Saved per layer-direction, field by field as
// declared, then the layer inputs.
Workspace carve(const Config& cfg, Carver& carver);

// ---- steps and the arguments ----------------------------------------------------------

// Which input time a direction reads at processing step s of sequence b. The backward
// direction runs over each sequence reversed within its length; past a sequence's end
// (s >= length) the step is inactive: the state holds and the output is 0.
struct StepTime {
  const int64_t* lengths;  // (B), or null when every sequence has T steps
  int64_t T;
  bool reversed;

  int64_t length(int64_t b) const { return lengths ? lengths[b] : T; }
  bool active(int64_t s, int64_t b) const { return s < length(b); }
  int64_t time(int64_t s, int64_t b) const {
    return reversed && s < length(b) ? length(b) - 1 - s : s;
  }
};

// The StepTime of one direction; lengths (B) int64, contiguous, or none.
StepTime step_time(const std::optional<Tensor>& lengths, int64_t T, int64_t direction);

// Row s * B + b of the result is row time(s, b) * B + b of a (T * B, .) input.
Tensor step_order_index(const StepTime& time, int64_t B);

// The layer's input for one direction, rows in that direction's step order (T * B, I).
Tensor direction_input(const Tensor& layer_input, const StepTime& time, int64_t B);

// Per layer and direction: the random masks drawn by the layer (see LSTMNoise).
struct Noise {
  std::vector<OptionalTensor> recurrent;   // (B, P), already scaled by 1 / (1 - p)
  std::vector<OptionalTensor> zoneout_c;   // (T, B, H) 0/1 keep-previous, by step
  std::vector<OptionalTensor> zoneout_h;   // (T, B, P)
  std::vector<double> zoneout_c_expected;  // the weight where there is no mask (p at evaluation)
  std::vector<double> zoneout_h_expected;
  std::vector<OptionalTensor> between;     // per layer but the last: (T, B, D * P)
};

// One layer-direction's weights, contiguous, with the two biases summed.
struct DirectionWeights {
  Tensor weight_ih, weight_hh, weight_hr, bias, peephole;
  Tensor layer_norm_ih, layer_norm_hh, layer_norm_cell_weight, layer_norm_cell_bias;

  DirectionWeights(const std::vector<OptionalTensor>& all, int64_t k);
};

// What forward and backward both read off their arguments.
struct Stack {
  Tensor x;                             // (T, B, I), contiguous
  Config cfg;
  std::vector<OptionalTensor> weights;  // L * D * kFieldCount, Field order, as given
  Noise noise;
  std::optional<Tensor> lengths;        // (B) int64, contiguous; none: every sequence has T
};

// Checks the arguments and reads the configuration off them (workspace.cpp).
Stack make_stack(const Tensor& x, std::vector<OptionalTensor> weights, int64_t num_layers,
                 bool bidirectional, const std::optional<Tensor>& lengths, Noise noise,
                 bool save_for_backward);

// ---- the module's functions (bindings.cpp binds them as Python calls them) ---------------

// forward.cpp. Returns output (T, B, D * P), h_n (L * D, B, P), c_n (L * D, B, H) and the
// workspace the backward reads (1-D, laid out by carve; complete only with
// cfg.save_for_backward).
std::vector<Tensor> forward(const Stack& stack, const Tensor& h0, const Tensor& c0);

// backward.cpp. Takes the forward's stack (with save_for_backward), dL/d(output, h_n,
// c_n) and the forward's workspace. Returns dx, dh0, dc0 and the weight gradients, one
// per weight given (in its order), an empty tensor where a weight is absent; all new
// tensors (b_ih and b_hh get equal gradients).
std::vector<Tensor> backward(const Stack& stack, const Tensor& grad_output,
                             const Tensor& grad_h_n, const Tensor& grad_c_n,
                             const Tensor& workspace);

// stream.cpp. One step at a time through a unidirectional stack, for streaming inference
// (no masks, zoneout at its expectation). The weights are prepared once; a step is then a
// few BLAS calls and one pointwise pass per layer, with nothing allocated but the returned
// output.
class StreamingStep {
 public:
  StreamingStep(const std::vector<OptionalTensor>& weights, int64_t num_layers,
                std::vector<double> zoneout_c_expected, std::vector<double> zoneout_h_expected);

  // x (B, I) -> h of the top layer (B, P), a new tensor; h (L, B, P) and c (L, B, H),
  // contiguous, advance in place.
  Tensor step(const Tensor& x_, Tensor& h, Tensor& c);

 private:
  template <typename F>
  void with_layer_norm(const F& f) const;
  void allocate_scratch(int64_t B, const Tensor& like);
  template <typename scalar_t, bool kHasPeephole, bool kHasLayerNorm>
  void run(const Tensor& x, Tensor& h, Tensor& c);

  std::vector<DirectionWeights> layers_;
  std::vector<double> zoneout_c_, zoneout_h_;  // per layer: the weight of the previous value
  std::vector<Tensor> zoneout_c_rows_, zoneout_h_rows_;
  Tensor scratch_;  // (B, width), see run
  int64_t H_, P_;
};

}  // namespace lstmkit::native
