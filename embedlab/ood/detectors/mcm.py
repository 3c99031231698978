"""Maximum Concept Matching (Ming et al., 2022): zero-shot, from the label names alone."""
from __future__ import annotations

import numpy as np

from embedlab.errors import InputError
from embedlab.neighbours import l2_normalise
from embedlab.ood.base import Detector, register
from embedlab.ood.logits import logsumexp
from embedlab.registry import Param


def label_to_words(label: str) -> str:
    """'book_flight' → 'book flight': what a sentence encoder understands best."""
    return " ".join(label.replace("_", " ").replace("-", " ").split())


@register
class MCMDetector(Detector):
    name = "mcm"
    description = "Zero-shot: minus the top softmax of cosine similarities to label-name prompts (Ming et al., 2022)."
    # T = 1 as in the paper, and best on CLINC150's validation split of {0.01, 0.02, 0.05, 0.1, 1}; the bare label
    # beat "a question about {label}", "a request to {label}" and "this is about {label}" there too.
    param_specs = (
        Param("template", str, "{label}", help="the prompt of a label; must contain {label}"),
        Param("temperature", float, 1.0, min=1e-3, help="softmax temperature T (positive)"),
    )
    needs_labels = True
    needs_embedder = True

    def fit(self, X, labels=None, label_names=None, embed_fn=None):
        # Only the set of labels matters here: given label names, per-document labels are not needed.
        if labels is None and label_names:
            labels = list(label_names)
            X = np.zeros((len(labels), 1))  # the embeddings themselves are not used
        return super().fit(X, labels, label_names, embed_fn)

    def _fit(self, X, labels, label_names, embed_fn):
        template = str(self.config["template"])
        if "{label}" not in template:
            raise InputError(f"mcm: the template must contain {{label}}, got {template!r}")
        self.classes = np.unique(labels)
        names = label_names if isinstance(label_names, dict) else {}
        self.prompts = [template.format(label=names.get(c) or label_to_words(c)) for c in self.classes]
        P = np.asarray(embed_fn(self.prompts), dtype=np.float64)
        if P.ndim != 2 or len(P) != len(self.prompts):
            raise InputError(f"mcm: the embedder returned shape {P.shape} for {len(self.prompts)} prompts")
        self._prompts = l2_normalise(P, dtype=np.float64)

    def _score(self, X):
        if X.shape[1] != self._prompts.shape[1]:
            raise InputError(f"mcm: test embeddings have {X.shape[1]} dimensions, "
                             f"the prompt embeddings {self._prompts.shape[1]}: use the same model")
        T = float(self.config["temperature"])
        z = l2_normalise(X, dtype=np.float64) @ self._prompts.T / T
        return -np.exp(z.max(1) - logsumexp(z))
