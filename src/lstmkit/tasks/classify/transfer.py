"""ULMFiT (Howard & Ruder 2018): a classifier that starts from a language model's embedding
and LSTM, fine-tuned with discriminative learning rates and gradual unfreezing."""

from __future__ import annotations

from typing import Any

import torch

from lstmkit.errors import LstmkitError
from lstmkit.tasks.classify.network import SequenceClassifierNet


def layer_groups(net: SequenceClassifierNet) -> list[list[torch.nn.Parameter]]:
    """Parameters from the top down: head (and attention), each LSTM layer, embedding."""
    encoder_layers: list[list[torch.nn.Parameter]] = [[] for _ in range(net.encoder.num_layers)]
    for name, parameter in net.encoder.named_parameters():
        # every LSTM parameter name ends in _l{layer} or _l{layer}_reverse
        layer = int(name.rsplit("_l", 1)[1].split("_")[0])
        encoder_layers[layer].append(parameter)
    top = [p for name, p in net.named_parameters()
           if not name.startswith(("encoder.", "embedding."))]
    groups = [top, *reversed(encoder_layers)]
    if net.embedding is not None:
        groups.append(list(net.embedding.parameters()))
    return groups


class GradualUnfreezing:
    """ULMFiT's schedule: epoch 1 trains the head only, each later epoch one more group."""

    def __init__(self, groups: list[list[torch.nn.Parameter]]) -> None:
        self.groups = groups

    def on_epoch_start(self, epoch: int, model: torch.nn.Module, optimizer: Any) -> None:
        # from the epoch number alone, so a resumed run freezes exactly as the first did
        for depth, group in enumerate(self.groups):
            for parameter in group:
                parameter.requires_grad_(depth < epoch)


def discriminative_groups(groups: list[list[torch.nn.Parameter]], lr: float,
                          decay: float) -> list[dict[str, Any]]:
    """AdamW parameter groups: each group down from the head learns ``decay`` times slower."""
    return [{"params": group, "lr": lr / decay ** depth} for depth, group in enumerate(groups)]


def language_model_encoder(run_dir: str) -> Any:
    """The language model's tokenizer, embedding and LSTM (see tasks.language_model)."""
    try:
        from lstmkit.tasks.language_model import pretrained_encoder
    except ModuleNotFoundError as missing:
        if missing.name != "lstmkit.tasks.language_model":
            raise
        raise LstmkitError("--from-lm needs the language-model task, which this lstmkit "
                           "does not have") from None
    encoder = pretrained_encoder(run_dir)
    if encoder.lstm.bidirectional:
        raise LstmkitError(f"the language model in {run_dir} is bidirectional; a classifier "
                           "can start only from a left-to-right one")
    return encoder
