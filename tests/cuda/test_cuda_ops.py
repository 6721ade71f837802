"""Math, shape, indexing and linalg ops on the GPU against torch: the CPU suite's tables (values,
dtypes, shapes, gradients, at rtol 1e-6 in float64), run with tensors on device='cuda'."""

from __future__ import annotations

import pytest
import test_airy as airy_tests
import test_bessel_jy as bessel_jy_tests
import test_bessel_k as bessel_k_tests
import test_distributions as distribution_tests
import test_distributions_kl_families as kl_family_tests
import test_distributions_matrix as matrix_distribution_tests
import test_distributions_rsample as rsample_tests
import test_distributions_transformed as transformed_tests
import test_linalg as linalg_tests
import test_linalg_factorizations_more as linalg_more_tests
import test_ops_index_reductions as index_reduction_tests
import test_ops_indexing as indexing_tests
import test_ops_math as math_tests
import test_ops_reduce as reduce_tests
import test_ops_shape as shape_tests
import test_ops_tensor_api as api_tests
import test_orthogonal_polynomials as polynomial_tests
import test_special_functions as special_tests
import test_special_more as special_more_tests
from conftest import on_target

# elementwise, linalg, ordering
test_unary = on_target(math_tests.test_unary)
test_unary_integer_input = on_target(math_tests.test_unary_integer_input_promotes_to_default_float)
test_unary_float32 = on_target(math_tests.test_unary_float32_stays_float32)
test_nan_and_inf = on_target(math_tests.test_nan_and_inf_semantics)
test_binary_broadcasting = on_target(math_tests.test_binary_broadcasting)
test_maximum_ties = on_target(math_tests.test_maximum_minimum_split_gradient_on_ties)
test_clamp_bounds = on_target(math_tests.test_clamp_gradients_at_bounds_and_with_nan)
test_pow_special = on_target(math_tests.test_pow_gradient_special_points)
test_mixed_dtypes = on_target(math_tests.test_integer_and_mixed_dtype_results)
test_comparisons = on_target(math_tests.test_comparisons_logical_and_bitwise)
test_matmul_shapes = on_target(math_tests.test_matmul_shape_cases)
test_linalg = on_target(math_tests.test_linalg_ops)
test_addmm_beta0 = on_target(math_tests.test_addmm_beta0_ignores_nan_input)
test_einsum = on_target(math_tests.test_einsum)
test_ordering = on_target(math_tests.test_ordering_values_indices_and_gradients)
test_sort_stable = on_target(math_tests.test_sort_is_stable_both_directions_and_nan_is_largest)

# reductions
test_reduction = on_target(reduce_tests.test_reduction)
test_reduction_0d_1d = on_target(reduce_tests.test_reduction_on_0d_and_1d)
test_ties = on_target(reduce_tests.test_ties_follow_torch)
test_prod_zeros = on_target(reduce_tests.test_prod_and_cumprod_gradients_with_zeros)
test_nan_propagates = on_target(reduce_tests.test_nan_propagates_like_torch)
test_norm_at_zero = on_target(reduce_tests.test_norm_gradient_is_zero_at_zero)
test_integer_reductions = on_target(reduce_tests.test_integer_and_bool_inputs)
test_empty_reductions = on_target(reduce_tests.test_empty_inputs)
test_max_with_dim = on_target(reduce_tests.test_max_with_dim_returns_named_values_and_indices)

# shapes, joins, views
test_shape_ops = on_target(shape_tests.test_matches_torch)
test_join_ops = on_target(shape_tests.test_join_matches_torch)
test_split_pieces = on_target(shape_tests.test_using_some_pieces_of_a_split)
test_cat_promotes = on_target(shape_tests.test_cat_and_stack_promote_dtypes_like_torch)
test_cat_grad_dtypes = on_target(shape_tests.test_cat_gradient_keeps_each_input_dtype)

# indexing
test_getitem = on_target(indexing_tests.test_getitem_matches_torch)
test_getitem_repeated = on_target(indexing_tests.test_getitem_repeated_indices_sum_gradients)
test_setitem_in_place = on_target(indexing_tests.test_setitem_without_grad_writes_in_place)
test_setitem_graph = on_target(indexing_tests.test_setitem_on_non_leaf_is_differentiable)
test_index_ops = on_target(indexing_tests.test_index_ops_match_torch)
test_inplace_index_ops = on_target(indexing_tests.test_inplace_index_ops)
test_scatter_reduce = on_target(indexing_tests.test_scatter_reduce_argument)
test_scatter_multiply_repeated = on_target(
    indexing_tests.test_scatter_multiply_with_repeated_indices
)
test_scatter_reduce_fn = on_target(index_reduction_tests.test_scatter_reduce_matches_torch)
test_index_reduce = on_target(index_reduction_tests.test_index_reduce_matches_torch)
test_index_reduce_inplace = on_target(index_reduction_tests.test_inplace_forms)
test_one_hot = on_target(indexing_tests.test_one_hot_matches_torch)
test_nonzero = on_target(indexing_tests.test_nonzero_and_argwhere)

# torch.linalg: inverses, solves, factorizations (cupy's cuSOLVER routines on a GPU)
test_linalg_inverses = on_target(linalg_tests.test_inverses_and_determinants_match_torch)
test_linalg_solve = on_target(linalg_tests.test_solve_matches_torch)
test_linalg_factorizations = on_target(linalg_tests.test_factorizations_match_torch)
test_linalg_spectral = on_target(linalg_tests.test_spectral_decompositions_match_torch)
test_linalg_second_derivatives = on_target(linalg_tests.test_second_derivatives_match_torch)
test_linalg_norms = on_target(linalg_tests.test_norms_match_torch)
test_transformed_log_prob = on_target(transformed_tests.test_log_prob_and_gradients_match_torch)
test_special_more_values = on_target(special_more_tests.test_unary_values_match_torch)
test_special_more_grads = on_target(special_more_tests.test_unary_gradients_match_torch)
test_lu = on_target(linalg_more_tests.test_lu_factor_and_lu_match_torch_with_gradients)
test_lu_solve = on_target(linalg_more_tests.test_lu_solve_matches_torch_with_gradients)
test_linalg_ex = on_target(linalg_more_tests.test_ex_variants_report_failures_in_info)
test_matrix_exp = on_target(linalg_more_tests.test_matrix_exp_matches_torch_with_gradients)
test_lstsq = on_target(linalg_more_tests.test_lstsq_matches_torch)
test_linalg_products = on_target(linalg_tests.test_products_match_torch)

# the rest of the tensor API: scans, rearrangements, statistics, small functions, in place
test_scans = on_target(api_tests.test_scans_match_torch)
test_arrangements = on_target(api_tests.test_arrangements_match_torch)
test_statistics = on_target(api_tests.test_statistics_match_torch)
test_small_functions = on_target(api_tests.test_small_functions_match_torch)
test_inplace_twins = on_target(api_tests.test_inplace_twins_match_torch)
test_random_fills = on_target(api_tests.test_random_fills_have_the_distributions_torch_draws)

# the gamma family and shardgrad.special
test_gamma_family = on_target(special_tests.test_gamma_family_matches_torch)
test_special_namespace = on_target(special_tests.test_special_namespace_matches_torch)

# distributions
test_distributions = on_target(distribution_tests.test_matches_torch)
test_kl_divergence = on_target(distribution_tests.test_kl_divergence_matches_torch)
test_distribution_draws = on_target(distribution_tests.test_draws_have_the_distribution_s_moments)
test_gamma_rsample = on_target(rsample_tests.test_gamma_rsample_is_unbiased)
test_beta_dirichlet_rsample = on_target(rsample_tests.test_beta_and_dirichlet_rsample_are_unbiased)
test_derived_rsample = on_target(rsample_tests.test_derived_rsamples_carry_gradients)
test_clamped_draws = on_target(rsample_tests.test_draws_clamped_away_from_zero_keep_their_gradient)
test_cross_family_kl = on_target(kl_family_tests.test_cross_family_kl_matches_torch)
test_low_rank_kl = on_target(kl_family_tests.test_low_rank_normal_kl_matches_torch)
test_continuous_bernoulli = on_target(
    matrix_distribution_tests.test_continuous_bernoulli_matches_torch
)
test_lkj_cholesky = on_target(
    matrix_distribution_tests.test_lkj_cholesky_matches_torch_and_draws_correlations
)
test_wishart = pytest.mark.filterwarnings("ignore:Singular sample:UserWarning")(
    on_target(matrix_distribution_tests.test_wishart_matches_torch)
)

# torch.special's Bessel functions and orthogonal polynomials
test_bessel_jy = on_target(bessel_jy_tests.test_bessel_first_and_second_kind)
test_bessel_k = on_target(bessel_k_tests.test_bessel_k_to_machine_precision)
test_orthogonal_polynomials = on_target(polynomial_tests.test_polynomials_match_torch)
test_airy = on_target(airy_tests.test_airy_ai_matches_references_and_torch)
