"""Validity catalogue for ps1/deconvnet: alternative correct answers and known mistakes.

The test cells build their own small undoable networks, so only the imports cell is needed as
setup: the graded function is checked independently of the student's part-2 classes (which the
notebook loads from transposed_convolutions.ipynb for its figures only).
"""

import torch
from validity_harness import Catalogue

catalogue = Catalogue(
    "ps1/deconvnet",
    tests={
        "visualise_activations": ["test_visualise_activations", "test_visualise_activations_deconvnet"],
    },
)


@catalogue.correct
def visualise_activations(model, x, layer_index, keep_top_k):
    """threshold at each image's k-th largest value, slice the model and use its own undo"""
    head = model[: layer_index + 1]
    with torch.no_grad():
        h = head(x)
        flat = h.flatten(1)
        kth = flat.sort(dim=1, descending=True).values[:, keep_top_k - 1 : keep_top_k]
        kept = torch.where(flat >= kth, flat, torch.zeros_like(flat)).reshape(h.shape)
        return head.undo(kept)


@catalogue.correct
def visualise_activations(model, x, layer_index, keep_top_k):
    """one image at a time, with a boolean mask and reversed layers"""
    layers = [model[i] for i in range(layer_index + 1)]
    with torch.no_grad():
        h = x
        for layer in layers:
            h = layer(h)
        mask = torch.zeros_like(h, dtype=torch.bool)
        for n in range(len(h)):
            positions = torch.topk(h[n].reshape(-1), keep_top_k).indices
            mask[n].view(-1)[positions] = True
        signal = h * mask
        for layer in reversed(layers):
            signal = layer.undo(signal)
    return signal


@catalogue.correct
def visualise_activations(model, x, layer_index, keep_top_k):
    """without no_grad, top-k values scattered into a fresh zero tensor"""
    h = x
    for i in range(layer_index + 1):
        h = model[i](h)
    values, where = h.reshape(h.shape[0], -1).topk(keep_top_k)
    kept = h.new_zeros(h.shape[0], h[0].numel()).scatter_(1, where, values).view_as(h)
    for i in reversed(range(layer_index + 1)):
        kept = model[i].undo(kept)
    return kept.detach()


@catalogue.correct
def visualise_activations(model, x, layer_index, keep_top_k):
    """iterates over the model's layers; each image's threshold from torch.kthvalue"""
    layers = []
    for index, layer in enumerate(model):
        if index > layer_index:
            break
        layers.append(layer)
    with torch.no_grad():
        h = x
        for layer in layers:
            h = layer(h)
        flat = h.reshape(len(h), -1)
        threshold = flat.kthvalue(flat.shape[1] - keep_top_k + 1, dim=1, keepdim=True).values
        kept = torch.where(flat >= threshold, flat, torch.zeros_like(flat)).reshape(h.shape)
        for layer in reversed(layers):
            kept = layer.undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations", "top-k over the whole batch, not per image")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(-1)
        top = flat.topk(keep_top_k).indices
        kept = torch.zeros_like(flat).scatter(0, top, flat[top]).reshape(h.shape)
        for i in range(layer_index, -1, -1):
            kept = model[i].undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations", "largest magnitudes instead of largest values")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.abs().topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, flat.gather(1, top)).reshape(h.shape)
        for i in range(layer_index, -1, -1):
            kept = model[i].undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations", "stops one layer short (model[:layer_index])")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, flat.gather(1, top)).reshape(h.shape)
        for i in range(layer_index - 1, -1, -1):
            kept = model[i].undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations", "keeps 1 at the strongest positions instead of their values")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, 1.0).reshape(h.shape)
        for i in range(layer_index, -1, -1):
            kept = model[i].undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations", "forgets to zero the other activations")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        for i in range(layer_index, -1, -1):
            h = model[i].undo(h)
    return h


@catalogue.wrong("test_visualise_activations", "top-k within each channel")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(h.shape[0], h.shape[1], -1)
        top = flat.topk(keep_top_k, dim=2).indices
        kept = torch.zeros_like(flat).scatter(2, top, flat.gather(2, top)).reshape(h.shape)
        for i in range(layer_index, -1, -1):
            kept = model[i].undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations", "undoes the layers in forward order")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, flat.gather(1, top)).reshape(h.shape)
        for i in range(layer_index + 1):
            kept = model[i].undo(kept)
    return kept


# Caught by the visible check: no gradient flows back through the grader's layers, nor through the visible
# check's toy layers (they detach), and the check turns autograd's RuntimeError into a message.
@catalogue.wrong("test_visualise_activations_deconvnet", "autograd's gradient (backprop), not the deconvnet")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.enable_grad():
        leaf = x.detach().clone().requires_grad_(True)
        h = leaf
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, flat.gather(1, top)).reshape(h.shape)
        return torch.autograd.grad(h, leaf, kept.detach())[0]


@catalogue.wrong("test_visualise_activations_deconvnet", "rescales each projection to a maximum of 1")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, flat.gather(1, top)).reshape(h.shape)
        for i in range(layer_index, -1, -1):
            kept = model[i].undo(kept)
        peak = kept.flatten(1).abs().amax(1).clamp_min(1e-12)
    return kept / peak[:, None, None, None]


@catalogue.wrong("test_visualise_activations_deconvnet", "keeps 1 at the strongest positions (unit probe)")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, 1.0).reshape(h.shape)
        for i in range(layer_index, -1, -1):
            kept = model[i].undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations_deconvnet", "keeps the whole feature map of the strongest unit")
def visualise_activations(model, x, layer_index, keep_top_k):
    with torch.no_grad():
        h = x
        for i in range(layer_index + 1):
            h = model[i](h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        channels = top // (h.shape[2] * h.shape[3])
        mask = torch.zeros(h.shape[:2], dtype=torch.bool)
        mask.scatter_(1, channels, True)
        kept = h * mask[:, :, None, None]
        for i in range(layer_index, -1, -1):
            kept = model[i].undo(kept)
    return kept


@catalogue.wrong("test_visualise_activations", "layers reached by model.children(), which the text rules out")
def visualise_activations(model, x, layer_index, keep_top_k):
    layers = list(model.children())[: layer_index + 1]
    with torch.no_grad():
        h = x
        for layer in layers:
            h = layer(h)
        flat = h.reshape(len(h), -1)
        top = flat.topk(keep_top_k, dim=1).indices
        kept = torch.zeros_like(flat).scatter(1, top, flat.gather(1, top)).reshape(h.shape)
        for layer in reversed(layers):
            kept = layer.undo(kept)
    return kept
