"""Pictures for the lessons: digits, label counts, pixel values, kernels, feature maps, curves.

Every function draws one matplotlib figure with pyplot and shows it (in Jupyter it
appears under the cell); it returns nothing. Arrays may be NumPy arrays or torch
tensors (tensors are detached and moved to the CPU first). Nothing here computes an
answer to an exercise: these only draw what they are given.
"""
from __future__ import annotations

from .digits import show_digits, show_label_counts, show_pixel_histogram, show_stack, show_digit_rows
from .layers import show_kernels, show_feature_maps, show_kernel_on_image, show_flatten
from .training import show_loss_curve, show_loss_curves, show_training_loop, show_descent_paths
from .flow import show_data_flow, trace_layers
from .evaluation import show_confusion, show_probabilities, show_bars, show_accuracy_bars, show_accuracy_grid

__all__ = [
    "show_digits",
    "show_label_counts",
    "show_pixel_histogram",
    "show_stack",
    "show_digit_rows",
    "show_kernels",
    "show_feature_maps",
    "show_kernel_on_image",
    "show_flatten",
    "show_data_flow",
    "trace_layers",
    "show_loss_curve",
    "show_loss_curves",
    "show_training_loop",
    "show_descent_paths",
    "show_confusion",
    "show_probabilities",
    "show_bars",
    "show_accuracy_bars",
    "show_accuracy_grid",
]
