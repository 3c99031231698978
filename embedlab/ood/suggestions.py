"""What the OOD page proposes before a comparison: the label that names a corpus's out-of-scope documents (CLINC's
"oos"), the corpus to start from, and what to pick when nothing is marked OOD yet."""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from embedlab.text_display import display_text
from storage.corpora import CorpusInfo

OOD_LABEL_GUESSES = ("oos", "ood", "out_of_scope", "out-of-scope")
LabelCounts = Callable[[CorpusInfo], Mapping[str, int]]


def ood_label_guess(counts: Mapping[str, int]) -> list[str]:
    """The label that names out-of-scope documents, when a corpus has one ([] when none)."""
    return [v for v in OOD_LABEL_GUESSES if v in counts][:1]


def starting_corpus(corpora: Sequence[CorpusInfo], label_counts: LabelCounts) -> int:
    """The index of the corpus a new comparison starts from: one that can be tested as it opens (a label such as
    "oos" marks its OOD documents), else one with labels (labels can be marked OOD or held out), else the first."""
    labelled = [i for i, c in enumerate(corpora) if c.label_col]
    for i in labelled:
        if ood_label_guess(label_counts(corpora[i])):
            return i
    return labelled[0] if labelled else 0


def nothing_ood_guidance(corpus: CorpusInfo, corpora: Sequence[CorpusInfo], label_counts: LabelCounts, *,
                         has_labels: bool, other_corpus_can_be_ood: bool) -> str:
    """What to pick when nothing is OOD yet, as Markdown (a state, not a mistake: the page shows it as guidance)."""
    name = display_text(corpus.name)
    if has_labels:
        text = ("Nothing is marked OOD yet. Pick what the detectors should flag: mark labels as OOD (e.g. CLINC's "
                "“oos”), hold out labels as near-OOD (classes never trained on)"
                + (", or pick another corpus as OOD under **Test set**." if other_corpus_can_be_ood else "."))
    elif other_corpus_can_be_ood:
        text = (f"“{name}” has no labels, so all its documents are in-distribution: pick another corpus as OOD "
                "under **Test set**.")
    else:
        text = (f"“{name}” has no labels, so all its documents are in-distribution, and no other corpus is left to "
                "test as OOD: add one on the Corpora page (or a labelled one, e.g. the bundled CLINC sample, whose "
                "“oos” label is OOD).")
    testable = [c.name for c in corpora if c.id != corpus.id and c.label_col and ood_label_guess(label_counts(c))]
    if testable:
        text += (f" Or pick “{display_text(testable[0])}” as the in-distribution corpus: its “oos”-like label is "
                 "OOD at once.")
    return text
