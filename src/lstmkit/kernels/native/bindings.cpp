// The Python module: forward, backward and StreamingStep (lstm.h) as pybind11 bindings.
// forward and backward take their arguments as lstmkit.kernels.native passes them, the
// masks as the six lists of _noise_arguments, in Noise's order.

#include "lstm.h"

#include <torch/csrc/utils/pybind.h>

namespace lstmkit::native {
namespace {

Noise make_noise(std::vector<OptionalTensor> recurrent, std::vector<OptionalTensor> zoneout_c,
                 std::vector<OptionalTensor> zoneout_h, std::vector<double> zoneout_c_expected,
                 std::vector<double> zoneout_h_expected, std::vector<OptionalTensor> between) {
  return Noise{std::move(recurrent),          std::move(zoneout_c),
               std::move(zoneout_h),          std::move(zoneout_c_expected),
               std::move(zoneout_h_expected), std::move(between)};
}

std::vector<Tensor> forward_from_python(
    const Tensor& x, const Tensor& h0, const Tensor& c0, std::vector<OptionalTensor> weights,
    int64_t num_layers, bool bidirectional, const std::optional<Tensor>& lengths,
    std::vector<OptionalTensor> recurrent, std::vector<OptionalTensor> zoneout_c,
    std::vector<OptionalTensor> zoneout_h, std::vector<double> zoneout_c_expected,
    std::vector<double> zoneout_h_expected, std::vector<OptionalTensor> between,
    bool save_for_backward) {
  Noise noise = make_noise(std::move(recurrent), std::move(zoneout_c), std::move(zoneout_h),
                           std::move(zoneout_c_expected), std::move(zoneout_h_expected),
                           std::move(between));
  return forward(make_stack(x, std::move(weights), num_layers, bidirectional, lengths,
                            std::move(noise), save_for_backward),
                 h0, c0);
}

std::vector<Tensor> backward_from_python(
    const Tensor& grad_output, const Tensor& grad_h_n, const Tensor& grad_c_n, const Tensor& x,
    std::vector<OptionalTensor> weights, int64_t num_layers, bool bidirectional,
    const std::optional<Tensor>& lengths, std::vector<OptionalTensor> recurrent,
    std::vector<OptionalTensor> zoneout_c, std::vector<OptionalTensor> zoneout_h,
    std::vector<double> zoneout_c_expected, std::vector<double> zoneout_h_expected,
    std::vector<OptionalTensor> between, const Tensor& workspace) {
  Noise noise = make_noise(std::move(recurrent), std::move(zoneout_c), std::move(zoneout_h),
                           std::move(zoneout_c_expected), std::move(zoneout_h_expected),
                           std::move(between));
  return backward(make_stack(x, std::move(weights), num_layers, bidirectional, lengths,
                             std::move(noise), true),
                  grad_output, grad_h_n, grad_c_n, workspace);
}

}  // namespace
}  // namespace lstmkit::native

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using namespace lstmkit::native;
  m.doc() = "lstmkit's native LSTM kernel (CPU): forward and backward through time";
  m.def("forward", &forward_from_python,
        "stacked LSTM forward; returns output, h_n, c_n, workspace");
  m.def("backward", &backward_from_python,
        "stacked LSTM backward; returns dx, dh0, dc0, *weight grads");
  pybind11::class_<StreamingStep>(m, "StreamingStep")
      .def(pybind11::init<const std::vector<OptionalTensor>&, int64_t, std::vector<double>,
                          std::vector<double>>())
      .def("step", &StreamingStep::step, "x (B, I) -> top h (B, P); h and c advance in place");
}
