"""Each variant against a separate, plain transcription of its paper's equations.

The transcriptions below split the weights per gate (W_xi, W_hi, ...) and spell
every equation out, independently of lstmkit.steps.lstm.
"""

import pytest
import torch
from torch.autograd import gradcheck

from lstmkit.kernels import reference
from lstmkit.kernels.noise import LSTMNoise
from lstmkit.nn import LSTM, LSTMCell, lstm_step
from lstmkit.steps.lstm import input_term

T, B, I, H = 5, 3, 4, 6


def per_gate(weight):
    """torch's row layout i, f, g, o -> a dict of per-gate blocks."""
    return dict(zip("ifgo", weight.chunk(4, 0)))


def ln(v, gain, bias=None, eps=1e-5):
    mean = v.mean(-1, keepdim=True)
    var = ((v - mean) ** 2).mean(-1, keepdim=True)
    out = (v - mean) / torch.sqrt(var + eps) * gain
    return out if bias is None else out + bias


def transcription(lstm, x, peephole=False, layer_norm=False, zoneout_masks=None,
                  recurrent_mask=None):
    """One layer, one direction, written from the papers (h, c start at zero)."""
    Wx, Wh = per_gate(lstm.weight_ih_l0), per_gate(lstm.weight_hh_l0)
    b = per_gate(lstm.bias_ih_l0 + lstm.bias_hh_l0)
    h = torch.zeros(x.shape[1], H, dtype=x.dtype)
    c = torch.zeros(x.shape[1], H, dtype=x.dtype)
    outputs = []
    for t in range(x.shape[0]):
        x_t = x[t]
        h_in = h if recurrent_mask is None else h * recurrent_mask  # Gal & Ghahramani
        if layer_norm:
            # Ba et al. 2016: LN(W_h h; a_h) + LN(W_x x; a_x) + b, over all 4H units
            a_x, a_h = per_gate(lstm.layer_norm_ih_l0), per_gate(lstm.layer_norm_hh_l0)
            zx = ln(torch.cat([x_t @ Wx[k].T for k in "ifgo"], -1),
                    torch.cat([a_x[k] for k in "ifgo"]))
            zh = ln(torch.cat([h_in @ Wh[k].T for k in "ifgo"], -1),
                    torch.cat([a_h[k] for k in "ifgo"]))
            z = dict(zip("ifgo", (zx + zh).chunk(4, -1)))
            z = {k: z[k] + b[k] for k in "ifgo"}
        else:
            z = {k: x_t @ Wx[k].T + h_in @ Wh[k].T + b[k] for k in "ifgo"}
        if peephole:
            # Gers & Schmidhuber 2000: input and forget gates look at c_{t-1}
            p_i, p_f, p_o = lstm.weight_peephole_l0
            z["i"] = z["i"] + p_i * c
            z["f"] = z["f"] + p_f * c
        i_t = torch.sigmoid(z["i"])
        f_t = torch.sigmoid(z["f"])
        g_t = torch.tanh(z["g"])
        c_new = f_t * c + i_t * g_t
        if peephole:
            z["o"] = z["o"] + p_o * c_new  # the output gate looks at c_t
        o_t = torch.sigmoid(z["o"])
        c_shown = ln(c_new, lstm.layer_norm_cell_weight_l0, lstm.layer_norm_cell_bias_l0) \
            if layer_norm else c_new
        h_new = o_t * torch.tanh(c_shown)
        if zoneout_masks is not None:
            # Krueger et al. 2016: d * previous + (1 - d) * new
            d_c, d_h = zoneout_masks
            d_c_t = d_c[t] if isinstance(d_c, torch.Tensor) else d_c
            d_h_t = d_h[t] if isinstance(d_h, torch.Tensor) else d_h
            c_new = d_c_t * c + (1 - d_c_t) * c_new
            h_new = d_h_t * h + (1 - d_h_t) * h_new
        h, c = h_new, c_new
        outputs.append(h)
    return torch.stack(outputs), h, c


def randomised(lstm):
    """Non-trivial values for every parameter (gains and peepholes start at 1 and small)."""
    torch.manual_seed(11)
    with torch.no_grad():
        for p in lstm.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return lstm


def run_reference(lstm, x, noise=None):
    noise = noise or reference.no_noise(1, 1)
    h0 = x.new_zeros(1, x.shape[1], H)
    out, h_n, c_n, _ = reference.lstm(x, h0, h0.clone(), lstm.layer_weights(), 1, False, noise)
    return out, h_n[0], c_n[0]


@pytest.mark.parametrize("peephole, layer_norm", [(True, False), (False, True), (True, True)])
def test_peephole_and_layer_norm_match_papers(peephole, layer_norm):
    lstm = randomised(LSTM(I, H, peephole=peephole, layer_norm=layer_norm).eval())
    x = torch.randn(T, B, I)
    expected = transcription(lstm, x, peephole=peephole, layer_norm=layer_norm)
    got_out, (got_h, got_c) = lstm(x)
    torch.testing.assert_close(got_out, expected[0])
    torch.testing.assert_close(got_h[0], expected[1])
    torch.testing.assert_close(got_c[0], expected[2])


def test_zoneout_training_masks_match_paper():
    lstm = randomised(LSTM(I, H, zoneout=(0.3, 0.6)))
    x = torch.randn(T, B, I)
    d_c = torch.bernoulli(torch.full((T, B, H), 0.3))
    d_h = torch.bernoulli(torch.full((T, B, H), 0.6))
    noise = LSTMNoise([None], [d_c], [d_h], [])
    expected = transcription(lstm, x, zoneout_masks=(d_c, d_h))
    for got, want in zip(run_reference(lstm, x, noise), expected):
        torch.testing.assert_close(got, want)


def test_zoneout_evaluation_is_expectation():
    lstm = randomised(LSTM(I, H, zoneout=(0.3, 0.6))).eval()
    x = torch.randn(T, B, I)
    expected = transcription(lstm, x, zoneout_masks=(0.3, 0.6))
    got, (h, c) = lstm(x)
    torch.testing.assert_close(got, expected[0])
    torch.testing.assert_close(c[0], expected[2])


def test_zoneout_masks_drawn_per_unit_and_step_with_rate_p():
    lstm = LSTM(I, 50, zoneout=(0.25, 0.5))
    noise = lstm.train().draw_noise(200, 8, torch.zeros(1))
    assert noise.zoneout_c[0].shape == (200, 8, 50)
    assert abs(noise.zoneout_c[0].mean().item() - 0.25) < 0.02
    assert abs(noise.zoneout_h[0].mean().item() - 0.5) < 0.02
    assert lstm.eval().draw_noise(200, 8, torch.zeros(1)).zoneout_c == [0.25]


def test_recurrent_dropout_one_mask_per_sequence_matches_paper():
    lstm = randomised(LSTM(I, H, recurrent_dropout=0.4))
    noise = lstm.train().draw_noise(T, B, torch.zeros(1))
    mask = noise.recurrent[0]
    assert mask.shape == (B, H)  # one mask per sequence, shared by every step
    assert torch.all((mask == 0) | torch.isclose(mask, torch.tensor(1 / 0.6)))
    x = torch.randn(T, B, I)
    expected = transcription(lstm, x, recurrent_mask=mask)
    for got, want in zip(run_reference(lstm, x, noise), expected):
        torch.testing.assert_close(got, want)
    # at evaluation no mask: the plain LSTM
    assert lstm.eval().draw_noise(T, B, torch.zeros(1)).recurrent == [None]


def test_weight_drop_is_drop_connect_on_hidden_weights():
    lstm = randomised(LSTM(I, H, weight_drop=0.5)).train()
    x = torch.randn(T, B, I)
    torch.manual_seed(3)
    out, _ = lstm(x)
    torch.manual_seed(3)
    mask = torch.bernoulli(torch.full((4 * H, H), 0.5)) / 0.5  # the same draw as the layer's
    plain = LSTM(I, H)
    plain.load_state_dict(lstm.state_dict())
    with torch.no_grad():
        plain.weight_hh_l0.mul_(mask)
    torch.testing.assert_close(out, plain(x)[0])
    # evaluation uses the full weights
    undropped = LSTM(I, H)
    undropped.load_state_dict(lstm.state_dict())
    torch.testing.assert_close(lstm.eval()(x)[0], undropped(x)[0])


def test_weight_drop_gradient_reaches_the_undropped_weight():
    lstm = LSTM(I, H, weight_drop=0.5).train()
    lstm(torch.randn(T, B, I))[0].sum().backward()
    assert lstm.weight_hh_l0.grad is not None
    # dropped weights get no gradient, kept ones do
    assert (lstm.weight_hh_l0.grad == 0).float().mean() > 0.2


VARIANT_CELLS = [
    dict(),
    dict(peephole=True),
    dict(layer_norm=True),
    dict(peephole=True, layer_norm=True),
]


@pytest.mark.parametrize("options", VARIANT_CELLS)
def test_reference_cell_gradcheck_float64(options):
    torch.manual_seed(0)
    cell = LSTMCell(3, 4, **options).double()
    randomised(cell)
    w = cell.weights()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[1.0, 0.0, 2.0, 1.0], [0.0, 2.0, 2.0, 0.0]], dtype=torch.float64)
    zone = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]], dtype=torch.float64)

    def step(x, h, c, *params):
        weights = type(w)(*params)
        h1, c1, _ = lstm_step(input_term(x, weights), h, c, weights, mask, zone, 1 - zone)
        return h1, c1

    assert gradcheck(step, (x, h, c, *w))


def test_layer_gradcheck_float64_with_every_variant():
    torch.manual_seed(0)
    lstm = LSTM(2, 3, num_layers=2, bidirectional=True, proj_size=2, peephole=True,
                layer_norm=True, backend="reference").double().eval()
    lstm.zoneout = (0.2, 0.3)
    x = torch.randn(4, 2, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 2])
    assert gradcheck(lambda x: lstm(x, lengths=lengths)[0], (x,))
