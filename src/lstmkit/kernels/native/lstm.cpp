// lstmkit's native LSTM kernel for the CPU: a stacked, optionally bidirectional LSTM
// with every variant of lstmkit.nn.LSTM, forward and backward through time.
//
// The interface (every buffer's shape and aliasing) and the algorithm are written
// down in README.md beside this file. In short, per layer and direction:
//   forward:  one GEMM for the input term of all steps, then per step one GEMM
//             (h_{t-1} W_hh^T, plus h W_hr^T with projection) and one fused
//             pointwise pass over the batch;
//   backward: per step one pointwise pass and one GEMM (two with projection),
//             then the weight gradients of all steps as one GEMM each.
// Time inside a direction is the processing step: the backward direction reads its
// input reversed within each sequence's length, so every per-step buffer below is
// contiguous per step.

// Only the headers used: torch/extension.h would triple the compile time.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/TensorOperators.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/ops/addmm.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <ATen/ops/full.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/mul.h>
#include <ATen/ops/zeros.h>
#include <torch/csrc/utils/pybind.h>

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>
#include <type_traits>
#include <vector>

namespace {

using at::Tensor;
using OptionalTensor = std::optional<Tensor>;

constexpr double kLayerNormEps = 1e-5;  // lstmkit.nn.cell.LAYER_NORM_EPS

// A pointwise pass runs on several threads only when each gets this many elements:
// below it, waking the thread pool costs more than it saves.
constexpr int64_t kElementsPerThread = 16384;

// Fields of one layer-direction's weights, in lstmkit.nn.cell.LSTMWeights order.
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

BufferCache& buffer_cache() {
  static BufferCache cache;
  return cache;
}

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

// Row s * B + b of the result is row time(s, b) * B + b of a (T * B, .) input.
Tensor step_order_index(const StepTime& time, int64_t B) {
  Tensor index = at::empty({time.T * B}, at::kLong);
  int64_t* out = index.data_ptr<int64_t>();
  for (int64_t s = 0; s < time.T; ++s) {
    for (int64_t b = 0; b < B; ++b) out[s * B + b] = time.time(s, b) * B + b;
  }
  return index;
}

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

// Per layer and direction: the random masks drawn by the layer (see LSTMNoise).
struct Noise {
  std::vector<OptionalTensor> recurrent;   // (B, P), already scaled by 1 / (1 - p)
  std::vector<OptionalTensor> zoneout_c;   // (T, B, H) 0/1 keep-previous, by step
  std::vector<OptionalTensor> zoneout_h;   // (T, B, P)
  std::vector<double> zoneout_c_expected;  // the weight where there is no mask (p at evaluation)
  std::vector<double> zoneout_h_expected;
  std::vector<OptionalTensor> between;     // per layer but the last: (T, B, D * P)
};

template <typename scalar_t>
struct DirectionMasks {
  RowMask<scalar_t> recurrent, zoneout_c, zoneout_h;

  DirectionMasks(const Noise& noise, int64_t k, const Config& cfg, const Tensor& like)
      : recurrent(noise.recurrent[k], 1.0, {cfg.B, cfg.P}, like),
        zoneout_c(noise.zoneout_c[k], noise.zoneout_c_expected[k], {cfg.T, cfg.B, cfg.H}, like),
        zoneout_h(noise.zoneout_h[k], noise.zoneout_h_expected[k], {cfg.T, cfg.B, cfg.P}, like) {}
};

// One layer-direction's weights, contiguous, with the two biases summed.
struct DirectionWeights {
  Tensor weight_ih, weight_hh, weight_hr, bias, peephole;
  Tensor layer_norm_ih, layer_norm_hh, layer_norm_cell_weight, layer_norm_cell_bias;

  DirectionWeights(const std::vector<OptionalTensor>& all, int64_t k) {
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

// ---- small building blocks --------------------------------------------------------------

// The Fortran BLAS that torch links (MKL, OpenBLAS, Accelerate), as ATen's own CPUBlas
// calls it. Weak: on a torch that does not export these symbols they are null and the
// products go through ATen's dispatcher instead.
extern "C" {
void sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const float* alpha, const float* a, const int* lda, const float* b, const int* ldb,
            const float* beta, float* c, const int* ldc) __attribute__((weak));
void dgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k,
            const double* alpha, const double* a, const int* lda, const double* b,
            const int* ldb, const double* beta, double* c, const int* ldc) __attribute__((weak));
}

template <typename scalar_t>
constexpr auto fortran_gemm() {
  if constexpr (std::is_same_v<scalar_t, float>) return &sgemm_;
  else return &dgemm_;
}

// Row-major C (m, n) = A (m, k) @ B (k, n) + beta * C, A or B read transposed when asked.
// The per-step products are small: at batch 1 the dispatcher and the tensor views it
// needs would cost several times the product itself, so BLAS is called directly.
template <typename scalar_t>
void matmul(bool transpose_a, bool transpose_b, int64_t m, int64_t n, int64_t k,
            const scalar_t* a, int64_t lda, const scalar_t* b, int64_t ldb, scalar_t beta,
            scalar_t* c, int64_t ldc) {
  const auto gemm = fortran_gemm<scalar_t>();
  if (gemm != nullptr) {
    // column-major BLAS computes C^T = B^T A^T: the same memory, operands swapped
    const int m_ = m, n_ = n, k_ = k, lda_ = lda, ldb_ = ldb, ldc_ = ldc;
    const scalar_t one = 1;
    gemm(transpose_b ? "T" : "N", transpose_a ? "T" : "N", &n_, &m_, &k_, &one, b, &ldb_, a,
         &lda_, &beta, c, &ldc_);
    return;
  }
  const auto options = at::TensorOptions().dtype(c10::CppTypeToScalarType<scalar_t>::value);
  auto matrix = [&](const scalar_t* data, bool transpose, int64_t rows, int64_t cols,
                    int64_t ld) {
    // the stored matrix is (cols, rows) when read transposed
    Tensor stored = at::from_blob(const_cast<scalar_t*>(data), {transpose ? cols : rows,
                                  transpose ? rows : cols}, {ld, 1}, options);
    return transpose ? stored.t() : stored;
  };
  Tensor c_matrix = at::from_blob(c, {m, n}, {ldc, 1}, options);
  at::addmm_out(c_matrix, c_matrix, matrix(a, transpose_a, m, k, lda),
                matrix(b, transpose_b, k, n, ldb), beta, 1);
}

template <typename scalar_t>
inline scalar_t sigmoid(scalar_t z) {
  return scalar_t(1) / (scalar_t(1) + std::exp(-z));
}

// hat = (z - mean) / sqrt(var + eps) over one row of n (biased variance, as F.layer_norm);
// returns 1 / sqrt(var + eps). hat may alias z.
template <typename scalar_t>
scalar_t normalise_row(const scalar_t* z, scalar_t* hat, int64_t n) {
  scalar_t sum = 0;
  for (int64_t j = 0; j < n; ++j) sum += z[j];
  const scalar_t mean = sum / n;
  scalar_t squares = 0;
  for (int64_t j = 0; j < n; ++j) squares += (z[j] - mean) * (z[j] - mean);
  const scalar_t rstd = scalar_t(1) / std::sqrt(squares / n + scalar_t(kLayerNormEps));
  for (int64_t j = 0; j < n; ++j) hat[j] = (z[j] - mean) * rstd;
  return rstd;
}

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

// f(b) for every sequence b, on several threads when the rows are long or many enough.
template <typename F>
void for_each_row(int64_t rows, int64_t row_size, const F& f) {
  const int64_t grain = std::max<int64_t>(1, kElementsPerThread / std::max<int64_t>(1, row_size));
  at::parallel_for(0, rows, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = begin; b < end; ++b) f(b);
  });
}

// ---- forward ----------------------------------------------------------------------------

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
    scalar_t sum = 0;
    for (int64_t j = 0; j < H; ++j) sum += c_new[j];
    const scalar_t mean = sum / H;
    scalar_t squares = 0;
    for (int64_t j = 0; j < H; ++j) squares += (c_new[j] - mean) * (c_new[j] - mean);
    const scalar_t rstd = scalar_t(1) / std::sqrt(squares / H + scalar_t(kLayerNormEps));
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

// ---- backward ---------------------------------------------------------------------------

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

// ---- the stack --------------------------------------------------------------------------

// Calls f(peephole_tag, layer_norm_tag) with std::bool_constant tags for the variant on.
template <typename F>
void with_variant(const Config& cfg, const F& f) {
  if (cfg.peephole && cfg.layer_norm) f(std::true_type{}, std::true_type{});
  else if (cfg.peephole) f(std::true_type{}, std::false_type{});
  else if (cfg.layer_norm) f(std::false_type{}, std::true_type{});
  else f(std::false_type{}, std::false_type{});
}

Noise make_noise(std::vector<OptionalTensor> recurrent, std::vector<OptionalTensor> zoneout_c,
                 std::vector<OptionalTensor> zoneout_h, std::vector<double> zoneout_c_expected,
                 std::vector<double> zoneout_h_expected, std::vector<OptionalTensor> between) {
  return Noise{std::move(recurrent),          std::move(zoneout_c),
               std::move(zoneout_h),          std::move(zoneout_c_expected),
               std::move(zoneout_h_expected), std::move(between)};
}

// The layer's input for one direction, rows in that direction's step order (T * B, I).
Tensor direction_input(const Tensor& layer_input, const StepTime& time, int64_t B) {
  Tensor rows = layer_input.view({time.T * B, layer_input.size(2)});
  return time.reversed ? rows.index_select(0, step_order_index(time, B)) : rows;
}

StepTime step_time(const std::optional<Tensor>& lengths, int64_t T, int64_t direction) {
  return StepTime{lengths.has_value() ? lengths->data_ptr<int64_t>() : nullptr, T, direction == 1};
}

// Returns output (T, B, D * P), h_n (L * D, B, P), c_n (L * D, B, H) and the workspace
// the backward reads (1-D, laid out by carve; complete only with save_for_backward).
std::vector<Tensor> forward(const Tensor& x_, const Tensor& h0, const Tensor& c0,
                            const std::vector<OptionalTensor>& weights, int64_t num_layers,
                            bool bidirectional, const std::optional<Tensor>& lengths_,
                            std::vector<OptionalTensor> recurrent,
                            std::vector<OptionalTensor> zoneout_c,
                            std::vector<OptionalTensor> zoneout_h,
                            std::vector<double> zoneout_c_expected,
                            std::vector<double> zoneout_h_expected,
                            std::vector<OptionalTensor> between, bool save_for_backward) {
  const at::NoGradGuard no_grad;  // the products inside are not for autograd to record
  const Tensor x = x_.contiguous();
  const Config cfg = make_config(x, weights, num_layers, bidirectional, save_for_backward);
  const Noise noise = make_noise(std::move(recurrent), std::move(zoneout_c), std::move(zoneout_h),
                                 std::move(zoneout_c_expected), std::move(zoneout_h_expected),
                                 std::move(between));
  std::optional<Tensor> lengths;
  if (lengths_.has_value()) lengths = lengths_->to(at::kLong).contiguous();
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
  Tensor workspace = buffer_cache().empty(counter.size(), x.options());
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
          const StepTime time = step_time(lengths, cfg.T, direction);
          Tensor h = h_n[k], c = c_n[k];
          forward_direction<scalar_t, decltype(peephole)::value, decltype(layer_norm)::value>(
              cfg, DirectionWeights(weights, k), direction_input(layer_input, time, cfg.B),
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

// Returns dx, dh0, dc0 and the weight gradients, one per weight given (in its order),
// an empty tensor where a weight is absent.
std::vector<Tensor> backward(const Tensor& grad_output, const Tensor& grad_h_n,
                             const Tensor& grad_c_n, const Tensor& x_,
                             const std::vector<OptionalTensor>& weights, int64_t num_layers,
                             bool bidirectional, const std::optional<Tensor>& lengths_,
                             std::vector<OptionalTensor> recurrent,
                             std::vector<OptionalTensor> zoneout_c,
                             std::vector<OptionalTensor> zoneout_h,
                             std::vector<double> zoneout_c_expected,
                             std::vector<double> zoneout_h_expected,
                             std::vector<OptionalTensor> between, const Tensor& workspace) {
  const at::NoGradGuard no_grad;
  const Tensor x = x_.contiguous();
  const Config cfg = make_config(x, weights, num_layers, bidirectional, true);
  const Noise noise = make_noise(std::move(recurrent), std::move(zoneout_c), std::move(zoneout_h),
                                 std::move(zoneout_c_expected), std::move(zoneout_h_expected),
                                 std::move(between));
  std::optional<Tensor> lengths;
  if (lengths_.has_value()) lengths = lengths_->to(at::kLong).contiguous();
  Carver carver(workspace);
  const Workspace ws = carve(cfg, carver);

  Tensor dh0 = grad_h_n.contiguous().clone();  // per direction: dL/d h_n in, dL/d h0 out
  Tensor dc0 = grad_c_n.contiguous().clone();
  std::vector<Tensor> weight_grads(weights.size());
  Tensor d_layer_input;

  Carver counter;
  carve_backward_scratch(cfg, counter);
  Carver scratch_carver(buffer_cache().empty(counter.size(), x.options()));
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
          const StepTime time = step_time(lengths, cfg.T, direction);
          WeightGrads grads(kFieldCount);
          Tensor dh = dh0[k], dc = dc0[k];
          backward_direction<scalar_t, decltype(peephole)::value, decltype(layer_norm)::value>(
              cfg, DirectionWeights(weights, k), direction_input(layer_input, time, cfg.B),
              DirectionMasks<scalar_t>(noise, k, cfg, x), time, direction, ws.saved[k],
              d_layer_output, scratch, dh, dc, d_input_rows, grads);
          for (int64_t f = 0; f < kFieldCount; ++f) weight_grads[k * kFieldCount + f] = grads[f];
        }
        if (layer > 0 && noise.between[layer - 1].has_value()) {
          d_layer_input.mul_(*noise.between[layer - 1]);
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

// ---- streaming ------------------------------------------------------------------------

// One step at a time through a unidirectional stack, for streaming inference (no masks,
// zoneout at its expectation). The weights are prepared once; a step is then a few BLAS
// calls and one pointwise pass per layer, with nothing allocated but the returned output.
class StreamingStep {
 public:
  StreamingStep(const std::vector<OptionalTensor>& weights, int64_t num_layers,
                std::vector<double> zoneout_c_expected, std::vector<double> zoneout_h_expected)
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

  // x (B, I) -> h of the top layer (B, P); h (L, B, P) and c (L, B, H) advance in place.
  Tensor step(const Tensor& x_, Tensor& h, Tensor& c) {
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

 private:
  template <typename F>
  void with_layer_norm(const F& f) const {
    if (layers_[0].layer_norm_ih.defined()) f(std::true_type{});
    else f(std::false_type{});
  }

  void allocate_scratch(int64_t B, const Tensor& like) {
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
  void run(const Tensor& x, Tensor& h, Tensor& c) {
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

  std::vector<DirectionWeights> layers_;
  std::vector<double> zoneout_c_, zoneout_h_;  // per layer: the weight of the previous value
  std::vector<Tensor> zoneout_c_rows_, zoneout_h_rows_;
  Tensor scratch_;  // (B, width), see run
  int64_t H_, P_;
};

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "lstmkit's native LSTM kernel (CPU): forward and backward through time";
  m.def("forward", &forward, "stacked LSTM forward; returns output, h_n, c_n, workspace");
  m.def("backward", &backward, "stacked LSTM backward; returns dx, dh0, dc0, *weight grads");
  pybind11::class_<StreamingStep>(m, "StreamingStep")
      .def(pybind11::init<const std::vector<OptionalTensor>&, int64_t, std::vector<double>,
                          std::vector<double>>())
      .def("step", &StreamingStep::step, "x (B, I) -> top h (B, P); h and c advance in place");
}
