"""Layers, losses and optimizers on the GPU against torch: the CPU suite's module and loss
tests (outputs, input and parameter gradients, buffers; float64 at rtol 1e-6) and optimizer
trajectories, with every tensor and module on device='cuda'."""

from __future__ import annotations

import numpy as np
import pytest
import test_ctc_loss as ctc_tests
import test_fractional_pooling as fractional_tests
import test_nn_attention as attention_tests
import test_nn_functional_aliases as alias_tests
import test_nn_grid_sample as grid_tests
import test_nn_layers as layer_tests
import test_nn_loss as loss_tests
import test_nn_rnn as rnn_tests
import test_nn_transformer as transformer_tests
import test_optim as optim_tests
import torch
from conftest import host, on_target

import shardgrad as sg

# layers
test_layer = on_target(layer_tests.test_layer_matches_torch)
test_batch_norm_stats = on_target(layer_tests.test_batch_norm_running_stats_and_eval)
test_maxpool_ties = on_target(layer_tests.test_maxpool_ties_go_to_first_maximum)
test_embedding = on_target(layer_tests.test_embedding_matches_torch)
test_pad_modes = on_target(layer_tests.test_pad_modes)
test_constant_pad_crop = on_target(layer_tests.test_constant_pad_negative_crops)
test_softmax_dims = on_target(layer_tests.test_functional_softmax_dims_and_dtype)

# sampling at points, and the smaller functional corners
test_grid_sample_2d = on_target(grid_tests.test_grid_sample_2d_matches_torch)
test_grid_sample_3d = on_target(grid_tests.test_grid_sample_3d_matches_torch)
test_affine_grid = on_target(grid_tests.test_affine_grid_matches_torch_with_gradient)
test_pdist = on_target(alias_tests.test_pdist_matches_torch)
test_inplace_activations = on_target(
    alias_tests.test_inplace_keyword_matches_torch_through_the_graph
)

test_ctc_loss = on_target(ctc_tests.test_padded_targets_match_torch)
test_fractional_pool = on_target(fractional_tests.test_fractional_max_pool_matches_torch)

# attention and RMSNorm
test_sdpa = on_target(attention_tests.test_sdpa_matches_torch)
test_sdpa_empty_rows = on_target(
    attention_tests.test_sdpa_rows_with_nothing_to_attend_to_are_zero_with_finite_gradients
)
test_multihead_attention = on_target(attention_tests.test_multihead_attention_matches_torch)
test_rms_norm = on_target(attention_tests.test_rms_norm_matches_torch)
test_encoder_layer = on_target(transformer_tests.test_encoder_layer_matches_torch)
test_transformer = on_target(transformer_tests.test_transformer_matches_torch)
test_recurrent = on_target(rnn_tests.test_recurrent_layers_match_torch)
test_lstm_projection = on_target(rnn_tests.test_lstm_projection_matches_torch)
test_packed_sequences = on_target(rnn_tests.test_packed_sequences_match_torch)

# losses
test_regression_losses = on_target(loss_tests.test_regression_losses)
test_smooth_l1_huber = on_target(loss_tests.test_smooth_l1_and_huber_options)
test_cross_entropy = on_target(loss_tests.test_cross_entropy_class_indices)
test_cross_entropy_probs = on_target(loss_tests.test_cross_entropy_probabilities)
test_unbatched_ignored_mean = on_target(loss_tests.test_unbatched_ignored_target_mean_is_nan)
test_bce = on_target(loss_tests.test_bce)
test_bce_with_logits = on_target(loss_tests.test_bce_with_logits)
test_bce_logits_stable = on_target(loss_tests.test_bce_with_logits_is_stable_for_large_logits)
test_pair_losses = on_target(loss_tests.test_pair_and_likelihood_losses)
test_weighted_margin_losses = on_target(loss_tests.test_weighted_margin_losses)

# optimizers
test_optimizer_trajectory = on_target(optim_tests.test_trajectory_matches_torch)
test_sgd_groups = on_target(optim_tests.test_sgd_per_group_momentum_and_nesterov_match_torch)
test_optimizer_round_trip = on_target(
    optim_tests.test_state_dict_round_trip_continues_the_trajectory
)
test_optimizer_loads_torch_state = on_target(optim_tests.test_loads_a_torch_state_dict)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weight,ignore", [(False, -100), (True, -100), (True, 2), (False, 0)])
def test_nll_and_kl_div(target, reduction, weight, ignore):
    rng = np.random.default_rng(5)
    logp = np.log(rng.dirichlet(np.ones(4), 6))
    t = rng.integers(0, 4, 6)
    w = rng.random(4) + 0.5 if weight else None
    q = rng.dirichlet(np.ones(4), 6)
    results = []
    for lib in (sg, torch):
        x = lib.tensor(logp, requires_grad=True)
        wt = None if w is None else lib.tensor(w)
        nll = lib.nn.functional.nll_loss(
            x, lib.tensor(t), wt, ignore_index=ignore, reduction=reduction
        )
        kl = lib.nn.functional.kl_div(x, lib.tensor(q), reduction=reduction)
        (nll.sum() + 2 * kl.sum()).backward()
        results.append((nll, kl, x.grad))
    for a, b in zip(*results):
        np.testing.assert_allclose(host(a), host(b), rtol=1e-6, atol=1e-9)


class _ForeignDeviceArray:
    """Another library's GPU tensor as shardgrad meets it in a checkpoint (torch's CUDA
    tensors): a shape, the CUDA array interface, and an `__array__` that refuses."""

    def __init__(self, device_array) -> None:
        self._d = device_array
        self.shape = device_array.shape

    @property
    def __cuda_array_interface__(self) -> dict:
        return self._d.__cuda_array_interface__

    def __array__(self, dtype=None, copy=None):
        raise TypeError("can't convert cuda:0 device type tensor to numpy")


def test_optimizer_loads_foreign_device_tensors(target):
    """State written as another library's GPU tensors loads onto the parameters' device as
    copies (the source keeps its values) and continues the same trajectory."""
    sg_opt, sg_ps, _, _ = optim_tests.build("Adam", {"amsgrad": True})
    optim_tests.run(sg_opt, sg_ps, range(3))
    saved = sg_opt.state_dict()
    foreign = {
        k: {n: (_ForeignDeviceArray(v._data) if n != "step" else v) for n, v in st.items()}
        for k, st in saved["state"].items()
    }
    fresh_ps = [sg.tensor(host(p).copy(), requires_grad=True) for p in sg_ps]
    fresh = sg.optim.Adam(optim_tests.groups(fresh_ps, {}), lr=1.0)
    fresh.load_state_dict({"state": foreign, "param_groups": saved["param_groups"]})
    for p in fresh_ps:
        for name, v in fresh.state[p].items():
            assert v.device.type == ("cpu" if name == "step" else "cuda"), name
    before = {k: host(st["exp_avg"]).copy() for k, st in saved["state"].items()}
    optim_tests.run(fresh, fresh_ps, range(3, 6))
    for k, st in saved["state"].items():  # loading copied: the source did not move
        np.testing.assert_array_equal(host(st["exp_avg"]), before[k])
    optim_tests.run(sg_opt, sg_ps, range(3, 6))
    for a, b in zip(fresh_ps, sg_ps):
        np.testing.assert_array_equal(host(a), host(b))
