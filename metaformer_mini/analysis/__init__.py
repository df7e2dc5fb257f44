"""Looking inside MetaFormers: mixing matrices, receptive fields, Grad-CAM, the mixer comparison, widgets.

Every ``plot_*`` / ``*_figure`` function returns a matplotlib Figure (end a notebook cell with it
to show it, or pass it to :func:`savefig`); the widgets wrap those same functions.
"""
from .compare import (activation_memory_mb, compare_mixers, engine_train_fn, format_table,
                      measure_throughput, peak_gpu_memory_mb, plot_accuracy_vs_cost,
                      plot_mixer_comparison)
from .gradcam import (cam_centre_of_mass, grad_cam, planted_object_images, plot_grad_cam,
                      tokens_to_pixels)
from .mixing import (apply_mixing_matrix, example_mixers, mixing_matrix, mixing_matrix_error,
                     model_mixing_matrix, plot_mixing_matrices, plot_token_weights)
from .plots import (MIXER_COLORS, MIXER_LABELS, MIXER_MARKERS, BookFigure, diverging_norm,
                    figure_png, heatmap, mixer_color, mixer_label, new_figure, savefig, to_display)
from .receptive_field import (StageField, analytic_receptive_field, effective_receptive_field,
                              erf_radius, plot_analytic_fields, plot_erfs, plot_radial_profiles,
                              radial_profile, random_images, stage_erf, support_box)
from .widgets import (erf_figure, erf_widget, gradcam_widget, live_figure, pool_size_figure,
                      pool_size_widget)

__all__ = [
    "BookFigure", "MIXER_COLORS", "MIXER_LABELS", "MIXER_MARKERS", "StageField",
    "activation_memory_mb", "analytic_receptive_field", "apply_mixing_matrix",
    "cam_centre_of_mass", "compare_mixers", "diverging_norm", "effective_receptive_field",
    "engine_train_fn", "erf_figure", "erf_radius", "erf_widget", "example_mixers", "figure_png",
    "format_table", "grad_cam", "gradcam_widget", "heatmap", "live_figure", "measure_throughput",
    "mixer_color", "mixer_label", "mixing_matrix", "mixing_matrix_error", "model_mixing_matrix",
    "new_figure", "peak_gpu_memory_mb", "planted_object_images", "plot_accuracy_vs_cost",
    "plot_analytic_fields", "plot_erfs", "plot_grad_cam", "plot_mixer_comparison",
    "plot_mixing_matrices", "plot_radial_profiles", "plot_token_weights", "pool_size_figure",
    "pool_size_widget", "radial_profile", "random_images", "savefig", "stage_erf", "support_box",
    "to_display", "tokens_to_pixels",
]
