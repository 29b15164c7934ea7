"""The native kernel against the reference kernel: values and gradients, every option.

Both kernels get the same weights, the same initial state and the same masks (an
LSTMNoise drawn once, or built by hand), and must agree to float32 tolerance; float64
gradcheck checks the hand-written backward on its own. The first test to run builds
the kernel (a minute or so, once per source and torch version; see kernels/native).
"""

import warnings

import pytest
import torch

import lstmkit.kernels as kernels
from lstmkit.kernels import native, reference
from lstmkit.kernels.native import build
from lstmkit.kernels.reference import LSTMNoise
from lstmkit.nn import LSTM
from lstmkit.steps.lstm import LSTMWeights

I, H = 5, 7


@pytest.fixture(scope="module", autouse=True)
def built_kernel():
    reason = native.unavailable_reason()
    assert reason is None, f"the native kernel did not build: {reason}"


def close(actual, expected, message=""):
    """Equal up to rounding: float32's (weight gradients sum T * B products), or float64's."""
    first = actual[0] if isinstance(actual, tuple) else actual
    tolerance = 1e-10 if first.dtype == torch.float64 else 1e-4
    torch.testing.assert_close(actual, expected, atol=tolerance, rtol=tolerance,
                               msg=lambda m: f"{message}: {m}")


def kernel_results(kernel, layer, x, h0, c0, noise, lengths, output_weights):
    """Outputs of one kernel and the gradients of a fixed function of them."""
    inputs = [t.detach().clone().requires_grad_() for t in (x, h0, c0)]
    parameters = list(layer.parameters())
    output, h_n, c_n, _ = kernel(*inputs, layer.layer_weights(), layer.num_layers,
                                 layer.bidirectional, noise, lengths)
    loss = (output * output_weights).sum() + (h_n * 1.3).sum() + (c_n * 0.7).sum()
    grads = torch.autograd.grad(loss, inputs + parameters)
    return (output, h_n, c_n), grads


def assert_kernels_agree(layer, T=6, B=3, lengths=None, noise=None, dtype=torch.float32):
    layer = layer.to(dtype)
    D, L = layer.num_directions, layer.num_layers
    P = layer.proj_size or layer.hidden_size
    x = torch.randn(T, B, layer.input_size, dtype=dtype)
    h0 = torch.randn(L * D, B, P, dtype=dtype)
    c0 = torch.randn(L * D, B, layer.hidden_size, dtype=dtype)
    noise = noise or layer.draw_noise(T, B, x)
    output_weights = torch.randn(T, B, D * P, dtype=dtype)
    expected = kernel_results(reference.lstm, layer, x, h0, c0, noise, lengths, output_weights)
    actual = kernel_results(native.lstm, layer, x, h0, c0, noise, lengths, output_weights)
    for name, a, e in zip(("output", "h_n", "c_n"), actual[0], expected[0]):
        close(a, e, name)
    names = ["x", "h0", "c0"] + [name for name, _ in layer.named_parameters()]
    for name, a, e in zip(names, actual[1], expected[1]):
        close(a, e, f"gradient of {name}")


VARIANTS = {
    "plain": {},
    "peephole": dict(peephole=True),
    "layer_norm": dict(layer_norm=True),
    "zoneout": dict(zoneout=(0.3, 0.2)),
    "recurrent_dropout": dict(recurrent_dropout=0.4),
    "proj": dict(proj_size=4),
    "no_bias": dict(bias=False),
    "everything": dict(peephole=True, layer_norm=True, zoneout=0.25, recurrent_dropout=0.3,
                       proj_size=3),
}
STRUCTURES = {
    "one_layer": dict(),
    "bidirectional": dict(bidirectional=True),
    "stacked_with_dropout": dict(num_layers=2, dropout=0.4),
    "stacked_bidirectional": dict(num_layers=2, bidirectional=True, dropout=0.3),
}
LENGTHS = torch.tensor([6, 2, 4])


@pytest.mark.parametrize("structure", STRUCTURES)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("with_lengths", [False, True], ids=["full", "lengths"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_native_equals_reference_in_training(variant, structure, with_lengths, dtype):
    torch.manual_seed(0)
    layer = LSTM(I, H, **VARIANTS[variant], **STRUCTURES[structure]).train()
    assert_kernels_agree(layer, lengths=LENGTHS if with_lengths else None, dtype=dtype)


@pytest.mark.parametrize("variant", ["plain", "zoneout", "everything"])
def test_native_equals_reference_at_evaluation(variant):
    # zoneout is its expectation p at evaluation: a float, not a mask
    torch.manual_seed(1)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, **VARIANTS[variant]).eval()
    assert_kernels_agree(layer, lengths=LENGTHS)


def test_masks_built_by_hand_reach_both_kernels_alike():
    torch.manual_seed(2)
    T, B = 5, 3
    layer = LSTM(I, H, num_layers=2, bidirectional=True, proj_size=4)
    P, n = 4, 4  # projection size; layer-directions
    noise = LSTMNoise(
        recurrent=[torch.rand(B, P) * 2 for _ in range(n)],
        zoneout_c=[torch.randint(0, 2, (T, B, H)).float(), 0.3, 0.0,
                   torch.randint(0, 2, (T, B, H)).float()],
        zoneout_h=[0.5, torch.randint(0, 2, (T, B, P)).float(), 0.0, 0.2],
        between_layers=[torch.rand(T, B, 2 * P) * 2],
    )
    assert_kernels_agree(layer, T=T, B=B, noise=noise, lengths=torch.tensor([5, 1, 3]))


def test_state_carried_across_chunks_and_steps():
    torch.manual_seed(3)
    layer = LSTM(I, H, num_layers=2, peephole=True, layer_norm=True, proj_size=3,
                 zoneout=0.2, backend="native").eval()
    x = torch.randn(12, 2, I)
    with torch.no_grad():
        whole, final = layer(x)
        state, pieces = None, []
        for chunk in x.split([5, 1, 6]):
            out, state = layer(chunk, state)
            pieces.append(out)
        close(torch.cat(pieces), whole)
        close(state, final)
        stream = native.Stream(layer.layer_weights(), layer.zoneout)
        state, steps = None, []
        for x_t in x:
            y_t, state = stream(x_t, state)
            steps.append(y_t)
    close(torch.stack(steps), whole)
    close(state, final)
    assert layer.last_backend == "native"


def test_stream_refuses_what_it_cannot_run():
    with pytest.raises(RuntimeError, match="unidirectional"):
        native.Stream(LSTM(I, H, num_layers=2, bidirectional=True).layer_weights())
    stream = native.Stream(LSTM(I, H).layer_weights())
    with pytest.raises(RuntimeError, match="x_t must be"):
        stream(torch.randn(2, I + 1))


def test_long_sequence_without_backward_matches_reference():
    # without a backward to come the kernel computes the input term a chunk of steps at a time
    torch.manual_seed(4)
    layer = LSTM(I, H, bidirectional=True, layer_norm=True, backend="native").eval()
    x = torch.randn(80, 4, I)
    lengths = torch.tensor([80, 33, 1, 64])
    with torch.no_grad():
        out, (h, c) = layer(x, lengths=lengths)
        layer.backend = "reference"
        expected_out, (expected_h, expected_c) = layer(x, lengths=lengths)
    close(out, expected_out)
    close((h, c), (expected_h, expected_c))


@pytest.mark.parametrize("options", [
    dict(zoneout=0.3, recurrent_dropout=0.3, weight_drop=0.4, num_layers=2, dropout=0.3),
    dict(layer_norm=True, zoneout=(0.1, 0.4), bidirectional=True, batch_first=True),
])
def test_layers_with_the_same_seed_agree(options):
    torch.manual_seed(5)
    ours = LSTM(I, H, backend="native", **options).train()
    theirs = LSTM(I, H, backend="reference", **options).train()
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(3, 6, I) if options.get("batch_first") else torch.randn(6, 3, I)
    results = []
    for layer in (ours, theirs):
        torch.manual_seed(6)
        out, (h, c) = layer(x, lengths=torch.tensor([6, 3, 5]))
        (out.sum() + h.square().sum() + c.sum()).backward()
        results.append([out, h, c] + [p.grad for p in layer.parameters()])
    for a, e in zip(*results):
        close(a, e)
    assert ours.last_backend == "native"


@pytest.mark.parametrize("options, lengths", [
    (dict(), None),
    (dict(peephole=True, layer_norm=True), None),
    (dict(bidirectional=True, proj_size=2), torch.tensor([4, 2])),
    (dict(num_layers=2, zoneout=0.3, recurrent_dropout=0.3, dropout=0.3), torch.tensor([3, 4])),
])
def test_gradcheck_in_float64(options, lengths):
    torch.manual_seed(7)
    layer = LSTM(3, 3, **options).double().train()
    T, B = 4, 2
    x = torch.randn(T, B, 3, dtype=torch.double)
    D, L, P = layer.num_directions, layer.num_layers, layer.proj_size or 3
    h0 = torch.randn(L * D, B, P, dtype=torch.double)
    c0 = torch.randn(L * D, B, 3, dtype=torch.double)
    noise = layer.draw_noise(T, B, x)
    weights = layer.layer_weights()

    def outputs(x, h0, c0, *leaves):
        fields = iter(leaves)
        rebuilt = [LSTMWeights(*(None if w is None else next(fields) for w in layer_direction))
                   for layer_direction in weights]
        output, h_n, c_n, _ = native.lstm(x, h0, c0, rebuilt, L, layer.bidirectional, noise,
                                          lengths)
        return output, h_n, c_n

    leaves = [w.detach().clone().requires_grad_() for layer_direction in weights
              for w in layer_direction if w is not None]
    inputs = [t.requires_grad_() for t in (x, h0, c0)]
    assert torch.autograd.gradcheck(outputs, (*inputs, *leaves))


def test_a_graph_kept_for_a_second_backward_keeps_its_buffers():
    # the kernel reuses its big buffers between calls, but never one a graph still holds
    torch.manual_seed(8)
    layer = LSTM(I, H, layer_norm=True, backend="native")
    x = torch.randn(6, 3, I, requires_grad=True)
    out, _ = layer(x)
    first = torch.autograd.grad(out.square().sum(), x, retain_graph=True)[0]
    other, _ = layer(torch.randn(6, 3, I))
    other.sum().backward()
    second = torch.autograd.grad(out.square().sum(), x)[0]
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_custom_ops_pass_opcheck():
    torch.manual_seed(9)
    layer = LSTM(I, H, num_layers=2, bidirectional=True, layer_norm=True, peephole=True,
                 proj_size=3, zoneout=0.2).train()
    T, B = 4, 2
    x = torch.randn(T, B, I, requires_grad=True)
    h0 = torch.randn(4, B, 3, requires_grad=True)
    c0 = torch.randn(4, B, H, requires_grad=True)
    noise = native._noise_arguments(layer.draw_noise(T, B, x))
    flat = native._flat_weights(layer.layer_weights())
    arguments = (x, h0, c0, *native._present(flat), 2, True, torch.tensor([4, 3]), *noise)
    torch.library.opcheck(torch.ops.lstmkit.native_lstm.default, arguments)


def test_torch_compile_runs_the_kernel_without_graph_breaks():
    torch.manual_seed(10)
    layer = LSTM(I, H, layer_norm=True, zoneout=0.2).eval()
    weights = layer.layer_weights()
    noise = layer.draw_noise(6, 3, torch.empty(0))

    def run(x, h0, c0):
        return native.lstm(x, h0, c0, weights, 1, False, noise)[:3]

    compiled = torch.compile(run, backend="aot_eager", fullgraph=True)
    x = torch.randn(6, 3, I, requires_grad=True)
    h0, c0 = torch.zeros(1, 3, H), torch.zeros(1, 3, H)
    expected, actual = run(x, h0, c0), compiled(x, h0, c0)
    close(actual, expected)
    grads = [torch.autograd.grad(out[0].sum(), x)[0] for out in (expected, actual)]
    close(grads[1], grads[0])


def test_without_a_compiler_auto_warns_once_and_native_says_why(monkeypatch):
    def no_compiler():
        raise build.NativeBuildError("no C++ compiler found (install g++)")

    monkeypatch.setattr(native, "compile_extension", no_compiler)
    monkeypatch.setattr(native, "_build_result", None)
    monkeypatch.setattr(kernels, "_warned_reference_fallback", False)
    assert native.unavailable_reason() == "no C++ compiler found (install g++)"
    x = torch.randn(4, 2, I)
    variant = LSTM(I, H, layer_norm=True)
    with pytest.warns(RuntimeWarning, match="no C.. compiler found.*reference"):
        variant(x)
    assert variant.last_backend == "reference"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        variant(x)
        LSTM(I, H)(x)  # the plain cell runs fused, needing no native kernel
    with pytest.raises(RuntimeError, match="backend='native' is not available: no C.. compiler"):
        LSTM(I, H, backend="native")(x)


def test_build_names_a_missing_compiler(monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler-lstmkit")
    with pytest.raises(build.NativeBuildError, match="no C.. compiler found.*no-such-compiler"):
        build.compile_extension()


def test_what_native_cannot_run_is_said():
    assert "CPU only" in native.config_blocker(torch.device("cuda"), torch.float32)
    assert "float32 and float64" in native.config_blocker(torch.device("cpu"), torch.bfloat16)
    layer = LSTM(I, H, layer_norm=True, backend="native").to(torch.bfloat16)
    with pytest.raises(RuntimeError, match="float32 and float64"):
        layer(torch.randn(3, 2, I, dtype=torch.bfloat16))


def test_auto_takes_native_for_the_plain_cell_only_where_measured_faster(monkeypatch):
    shape = (100, 64, 128, 256)
    monkeypatch.setitem(native.choice.MEASURED, shape, (1.2, 0.5))
    weight = torch.zeros(1, requires_grad=True)
    size = torch.Size([50, 60, 100])  # nearest measured shape: the one above
    assert native.native_preferred(size, 250, weight)
    with torch.no_grad():
        assert not native.native_preferred(size, 250, weight)
    assert not native.native_preferred(size, 250, weight.to("meta"))
    layer = LSTM(100, 250)
    layer(torch.randn(2, 60, 100))
    assert layer.last_backend == "native"


def test_saturated_gates_stay_finite():
    # gate pre-activations far below -88: exp(-z) overflows float32, which under the
    # kernel's -ffast-math once gave NaN outputs (a speech model reached -90 in training)
    torch.manual_seed(5)
    layer = LSTM(I, 32, backend="native")  # whole vectors of units: the vector exp's path
    with torch.no_grad():
        for name, tensor in layer.named_parameters():
            tensor.mul_(40 if "weight" in name else 0)
    x = torch.randn(30, 4, I) * 3
    out, (h, c) = layer(x)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(c).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())
    layer.backend = "reference"
    expected, _ = layer(x)
    # gates this steep turn rounding differences into visible ones: agree loosely
    torch.testing.assert_close(out, expected, atol=5e-3, rtol=0)
    with torch.no_grad():  # the streaming step too
        stream = layer.streaming_step()
        state = None
        for t in range(x.shape[0]):
            step_out, state = stream(x[t], state)
        assert torch.isfinite(step_out).all()
        torch.testing.assert_close(step_out, expected[-1], atol=5e-3, rtol=0)
