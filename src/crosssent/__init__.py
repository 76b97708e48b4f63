"""CrossSent: multimodal sentiment analysis with a Gated Multi-modal Residual Adapter."""

from crosssent.metrics import compute_metrics
from crosssent.model.configuration import CrossSentConfig
from crosssent.model.modeling import CrossSentModel, CrossSentOutput, build_model
from crosssent.model.objectives import CrossSentObjective, cosine_ramp, eioi_loss, mpr_loss

__all__ = [
    "CrossSentConfig",
    "CrossSentModel",
    "CrossSentObjective",
    "CrossSentOutput",
    "build_model",
    "compute_metrics",
    "cosine_ramp",
    "eioi_loss",
    "mpr_loss",
]
__version__ = "0.1.0"
