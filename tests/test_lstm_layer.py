"""lstmkit.nn.LSTM against torch.nn.LSTM: values, gradients, layouts, state, errors."""

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

import lstmkit.nn as lnn
from lstmkit.nn import LSTM, record_gates

BACKENDS = ["reference", "fused"]


def pair(backend, **kwargs):
    """A torch.nn.LSTM and an lstmkit LSTM with the same weights."""
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(**kwargs)
    ours = LSTM(**kwargs, backend=backend)
    ours.load_state_dict(theirs.state_dict())
    return theirs, ours


def assert_same(a, b, atol=1e-5):
    if isinstance(a, tuple):
        for x, y in zip(a, b):
            assert_same(x, y, atol)
    else:
        torch.testing.assert_close(a, b, atol=atol, rtol=1e-4)


CONFIGS = [
    dict(input_size=5, hidden_size=7),
    dict(input_size=5, hidden_size=7, num_layers=3),
    dict(input_size=5, hidden_size=7, num_layers=2, bidirectional=True),
    dict(input_size=5, hidden_size=7, num_layers=2, proj_size=3),
    dict(input_size=5, hidden_size=7, num_layers=2, bidirectional=True, proj_size=4,
         batch_first=True),
    dict(input_size=5, hidden_size=7, bias=False),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("config", CONFIGS)
def test_values_and_gradients_equal_torch(backend, config):
    theirs, ours = pair(backend, **config)
    shape = (3, 6, 5) if config.get("batch_first") else (6, 3, 5)
    x = torch.randn(shape)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    out1, (h1, c1) = theirs(x1)
    out2, (h2, c2) = ours(x2)
    assert_same((out1, h1, c1), (out2, h2, c2))
    weights = torch.randn_like(out1)
    ((out1 * weights).sum() + h1.sum() + c1.sum()).backward()
    ((out2 * weights).sum() + h2.sum() + c2.sum()).backward()
    assert_same(x1.grad, x2.grad)
    for (name, p1), (_, p2) in zip(theirs.named_parameters(), ours.named_parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, atol=1e-5, rtol=1e-4, msg=name)
    assert ours.last_backend == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_initial_state_and_unbatched_input(backend):
    theirs, ours = pair(backend, input_size=4, hidden_size=6, num_layers=2)
    x = torch.randn(5, 2, 4)
    hx = (torch.randn(2, 2, 6), torch.randn(2, 2, 6))
    assert_same(theirs(x, hx), ours(x, hx))
    assert_same(theirs(x[:, 0]), ours(x[:, 0]))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("enforce_sorted", [True, False])
def test_packed_sequence_equals_torch(backend, enforce_sorted):
    theirs, ours = pair(backend, input_size=3, hidden_size=5, num_layers=2, bidirectional=True)
    lengths = torch.tensor([6, 4, 2]) if enforce_sorted else torch.tensor([2, 6, 4])
    x = torch.randn(6, 3, 3)
    packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    out1, (h1, c1) = theirs(packed)
    out2, (h2, c2) = ours(packed)
    assert torch.equal(out1.batch_sizes, out2.batch_sizes)
    assert_same(out1.data, out2.data)
    assert_same((h1, c1), (h2, c2))


@pytest.mark.parametrize("backend", BACKENDS)
def test_lengths_mask_outputs_and_final_state(backend):
    torch.manual_seed(1)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True, backend=backend)
    x = torch.randn(3, 7, 3)
    lengths = torch.tensor([7, 3, 5])
    out, (h, c) = lstm(x, lengths=lengths)
    for b, n in enumerate(lengths.tolist()):
        # each sequence alone, unpadded, gives the same outputs and final state
        alone, (h_b, c_b) = lstm(x[b : b + 1, :n])
        torch.testing.assert_close(out[b, :n], alone[0], atol=1e-5, rtol=1e-4)
        assert torch.all(out[b, n:] == 0)
        torch.testing.assert_close(h[:, b], h_b[:, 0], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(c[:, b], c_b[:, 0], atol=1e-5, rtol=1e-4)


def test_lengths_same_on_both_backends_with_gradients():
    torch.manual_seed(2)
    ref = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, backend="reference")
    fus = LSTM(3, 4, num_layers=2, bidirectional=True, proj_size=2, backend="fused")
    fus.load_state_dict(ref.state_dict())
    x = torch.randn(6, 4, 3)
    lengths = torch.tensor([6, 1, 4, 5])
    a, (ha, ca) = ref(x, lengths=lengths)
    b, (hb, cb) = fus(x, lengths=lengths)
    assert_same((a, ha, ca), (b, hb, cb))
    (a.sum() + ha.sum()).backward()
    (b.sum() + hb.sum()).backward()
    for p1, p2 in zip(ref.parameters(), fus.parameters()):
        torch.testing.assert_close(p1.grad, p2.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("options", [{}, dict(peephole=True, layer_norm=True, proj_size=3)])
def test_chunked_equals_whole(options):
    torch.manual_seed(3)
    lstm = LSTM(4, 6, num_layers=2, backend="reference", **options).eval()
    x = torch.randn(12, 2, 4)
    whole, final = lstm(x)
    state, pieces = None, []
    for chunk in x.split([5, 1, 6]):
        out, state = lstm(chunk, state)
        pieces.append(out)
    assert_same(torch.cat(pieces), whole)
    assert_same(state, final)
    # one step at a time through the streaming API
    state, steps = None, []
    for x_t in x:
        y_t, state = lstm.step(x_t, state)
        steps.append(y_t)
    assert_same(torch.stack(steps), whole)


def test_state_dict_round_trip_both_ways():
    ours = LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    theirs = torch.nn.LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    theirs.load_state_dict(ours.state_dict())
    back = LSTM(3, 5, num_layers=2, bidirectional=True, proj_size=2)
    back.load_state_dict(theirs.state_dict())
    for (n1, p1), (n2, p2) in zip(ours.state_dict().items(), back.state_dict().items()):
        assert n1 == n2 and torch.equal(p1, p2)
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_forget_bias_default_and_option():
    lstm = LSTM(3, 4)
    b_f = (lstm.bias_ih_l0 + lstm.bias_hh_l0)[4:8]
    assert torch.allclose(b_f, torch.ones(4))
    lstm = LSTM(3, 4, forget_bias=0.0)
    assert torch.allclose((lstm.bias_ih_l0 + lstm.bias_hh_l0)[4:8], torch.zeros(4))
    with pytest.raises(ValueError, match="bias=True"):
        LSTM(3, 4, bias=False, forget_bias=2.0)


def test_auto_backend_choice_and_errors():
    x = torch.randn(3, 2, 4)
    plain = LSTM(4, 5)
    plain(x)
    assert plain.last_backend == "fused"
    variant = LSTM(4, 5, layer_norm=True)
    variant(x)
    assert variant.last_backend in ("native", "reference")
    with pytest.raises(ValueError, match="fused.*layer_norm"):
        LSTM(4, 5, layer_norm=True, backend="fused")(x)
    weight_dropped = LSTM(4, 5, weight_drop=0.3, backend="fused").train()
    weight_dropped(x)
    assert weight_dropped.last_backend == "fused"


def test_gate_recording():
    torch.manual_seed(4)
    lstm = LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True)
    x = torch.randn(2, 5, 3)
    with record_gates(lstm) as trace:
        out, (h, c) = lstm(x)
    assert lstm.last_backend == "reference"
    gates = trace.last
    assert len(gates) == 4
    for g in gates:
        assert set(g) == {"i", "f", "g", "o", "c"}
        assert g["f"].shape == (2, 5, 4)
        assert torch.all((g["f"] > 0) & (g["f"] < 1))
    # the recorded cell state at the last step is the final c of the forward direction,
    # and at the first step that of the backward direction
    torch.testing.assert_close(gates[2]["c"][:, -1], c[2])
    torch.testing.assert_close(gates[3]["c"][:, 0], c[3])
    # outside the block nothing is recorded and auto runs the fast kernel again
    lstm(x)
    assert len(trace.calls) == 1 and lstm.last_backend == "fused"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(input_size=-1, hidden_size=4), "input_size"),
        (dict(input_size=3, hidden_size=0), "hidden_size"),
        (dict(input_size=3, hidden_size=4, num_layers=0), "num_layers"),
        (dict(input_size=3, hidden_size=4, dropout=1.0), "dropout"),
        (dict(input_size=3, hidden_size=4, dropout=-0.1), "dropout"),
        (dict(input_size=3, hidden_size=4, proj_size=4), "proj_size"),
        (dict(input_size=3, hidden_size=4, zoneout=1.5), "zoneout"),
        (dict(input_size=3, hidden_size=4, recurrent_dropout=1.0), "recurrent_dropout"),
        (dict(input_size=3, hidden_size=4, weight_drop=-1), "weight_drop"),
        (dict(input_size=3, hidden_size=4, backend="cuda"), "backend"),
    ],
)
def test_bad_constructor_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LSTM(**kwargs)


def test_bad_call_arguments():
    lstm = LSTM(3, 4)
    with pytest.raises(ValueError, match="rank 3"):
        lstm(torch.randn(2, 3, 4, 3))
    with pytest.raises(ValueError, match="input_size=3"):
        lstm(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match="longer than the sequence"):
        lstm(torch.randn(5, 2, 3), lengths=torch.tensor([6, 2]))
    with pytest.raises(ValueError, match="one length per sequence"):
        lstm(torch.randn(5, 2, 3), lengths=torch.tensor([5]))
    with pytest.raises(ValueError, match="at least 1"):
        lstm(torch.randn(5, 2, 3), lengths=torch.tensor([0, 2]))
    with pytest.raises(ValueError, match="initial state"):
        lstm(torch.randn(5, 2, 3), (torch.zeros(1, 3, 4), torch.zeros(1, 3, 4)))
    with pytest.raises(ValueError, match="unidirectional"):
        LSTM(3, 4, bidirectional=True).step(torch.randn(2, 3))


def test_lstm_cell_equals_torch_cell():
    torch.manual_seed(5)
    theirs = torch.nn.LSTMCell(3, 5)
    ours = lnn.LSTMCell(3, 5)
    ours.load_state_dict(theirs.state_dict())
    x, h, c = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    assert_same(theirs(x, (h, c)), ours(x, (h, c)))
    assert_same(theirs(x[0]), ours(x[0]))


@pytest.mark.parametrize("name", ["GRU", "RNN"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_gru_and_rnn_equal_torch(name, backend):
    torch.manual_seed(6)
    theirs = getattr(torch.nn, name)(3, 5, num_layers=2, bidirectional=True, batch_first=True)
    ours = getattr(lnn, name)(3, 5, num_layers=2, bidirectional=True, batch_first=True,
                              backend=backend)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 6, 3, requires_grad=True)
    x2 = x.detach().clone().requires_grad_()
    out1, h1 = theirs(x)
    out2, h2 = ours(x2)
    assert_same((out1, h1), (out2, h2))
    (out1.sum() + h1.sum()).backward()
    (out2.sum() + h2.sum()).backward()
    assert_same(x.grad, x2.grad)
    lengths = torch.tensor([6, 2, 5, 1])
    packed = pack_padded_sequence(x.detach(), lengths, batch_first=True, enforce_sorted=False)
    p_out, p_h = theirs(packed)
    l_out, l_h = ours(x.detach(), lengths=lengths)
    assert_same(pad_packed_sequence(p_out, batch_first=True)[0], l_out)
    assert_same(p_h, l_h)


@pytest.mark.parametrize("options", [{}, dict(layer_norm=True, zoneout=0.2, num_layers=2),
                                     dict(peephole=True, proj_size=3)])
def test_inference_step_runs_natively_and_follows_the_weights(options):
    from lstmkit.kernels import native

    if native.unavailable_reason():
        pytest.skip(f"native kernel: {native.unavailable_reason()}")
    torch.manual_seed(5)
    lstm = LSTM(4, 6, **options).eval()
    x = torch.randn(9, 2, 4)
    with torch.no_grad():
        whole, final = lstm(x)
        state, steps = None, []
        for x_t in x:
            given = state
            kept = None if state is None else tuple(t.clone() for t in state)
            y_t, state = lstm.step(x_t, state)
            if given is not None:  # the state passed in is left as it was
                assert all(torch.equal(a, b) for a, b in zip(given, kept))
            steps.append(y_t)
    assert lstm.last_backend == "native"
    torch.testing.assert_close(torch.stack(steps), whole, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(state, final, atol=1e-5, rtol=1e-4)
    # a changed weight is seen at the next step: an optimiser step, then new weights loaded
    for change in ("optimiser", "load"):
        if change == "optimiser":
            lstm.train()
            optimiser = torch.optim.SGD(lstm.parameters(), lr=0.5)
            lstm(x)[0].sum().backward()
            optimiser.step()
            lstm.eval()
        else:
            lstm.load_state_dict(LSTM(4, 6, **options).state_dict())
        with torch.no_grad():
            expected = lstm(x[:1])[0][0]
            torch.testing.assert_close(lstm.step(x[0])[0], expected, atol=1e-5, rtol=1e-4)
    # with gradients wanted the step keeps its graph
    y_t, _ = lstm.step(x[0])
    y_t.sum().backward()
    assert lstm.weight_hh_l0.grad is not None
