"""Which of a case's sequences each ensemble member takes, when the case lacks some of them.

A member takes the largest channel subset it was trained for (its checkpoint's
``trained_subsets``) among the sequences the case has; ties go to the subset listed first. Its
channels outside that subset are filled with :data:`~brats_seg.data.subsets.MISSING_VALUE` after
normalization, as in training. Sequences the case has beyond the subset are not used (the record
lists them). A member trained for no subset of what the case has is left out of the ensemble with
a note; when no member can take the case, the case is refused in one line naming what is missing.

``zero_fill=True`` runs such members anyway on what the case has, the rest filled: the zero-filled
baseline of the HeMIS, U-HVED and RFNet tables. The record marks those inputs ``trained: false``.

Members may take different sequence sets (GlioMODA's form: one model per combination of sequences,
e.g. nnU-Net folders trained on t1c+t2f+t2w+t1n and on t2f+t2w). Then they are alternatives, not an
ensemble: of the members that can take the case, only those using the most of its sequences run
(averaged when several do, e.g. folds of one combination); the others are left out with a note.
Members that all take the same sequence set are averaged as before, whatever subset each uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..data.subsets import ordered, subset_name
from ..errors import CaseError

COMPLETE_ONLY_HINT = "train with --modality-dropout to segment cases with missing sequences"


@dataclass(frozen=True)
class MemberInput:
    """How member ``index`` takes the case: ``used`` channels from the case, ``filled`` ones set to the
    missing value; ``trained``: whether the network was trained for ``used``."""

    index: int
    used: tuple[str, ...]
    filled: tuple[str, ...]
    trained: bool = True


@dataclass
class SequencePlan:
    """The case's sequences (``available``), the members that take part (``inputs``) and those left out
    (``left_out``: member name -> reason)."""

    case_id: str
    available: tuple[str, ...]
    channels: tuple[str, ...]
    inputs: list[MemberInput] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)

    def _union(self, attr: str) -> tuple[str, ...]:
        return ordered({c for i in self.inputs for c in getattr(i, attr)}, self.channels)

    @property
    def used(self) -> tuple[str, ...]:
        """Channels read from the case by at least one member."""
        return self._union("used")

    @property
    def filled(self) -> tuple[str, ...]:
        """Channels filled with the missing value for at least one member."""
        return self._union("filled")

    def record(self, names: Sequence[str]) -> dict[str, Any]:
        """JSON-able record for the sidecar (``names``: member names by index)."""
        return {"available": list(self.available), "used": list(self.used), "filled": list(self.filled),
                "unused": [c for c in self.available if c not in self.used],
                "members": [{"name": names[i.index], "used": list(i.used), "filled": list(i.filled),
                             "trained": i.trained} for i in self.inputs],
                "left_out": [{"name": n, "reason": r} for n, r in self.left_out.items()]}

    def notes(self) -> list[str]:
        """One line per member left out, for the console."""
        return [f"case {self.case_id}: {name} left out: {reason}" for name, reason in self.left_out.items()]


def best_subset(trained: Sequence[tuple[str, ...]], available: Sequence[str]) -> tuple[str, ...] | None:
    """The largest of the ``trained`` subsets inside ``available`` (the first listed among equals), or None."""
    have = set(available)
    fitting = [s for s in trained if set(s) <= have]
    return max(fitting, key=len) if fitting else None  # max keeps the first of equal length


def _describe(trained: Sequence[tuple[str, ...]], channels: tuple[str, ...]) -> str:
    if list(trained) == [channels]:
        return "was trained on complete input only"
    return f"was trained only for {', '.join(subset_name(s) for s in trained)}"


def union_channels(members: Sequence) -> tuple[str, ...]:
    """Every member's channels, once each: the first member's order, then what later members add."""
    out: list[str] = []
    for m in members:
        out.extend(c for c in m.channels if c not in out)
    return tuple(out)


def _keep_most_informed(plan: SequencePlan, members: Sequence) -> None:
    """Members with different sequence sets are alternatives: keep the inputs using the most sequences."""
    if not plan.inputs:
        return
    most = max(len(i.used) for i in plan.inputs)
    best = next(i for i in plan.inputs if len(i.used) == most)
    for i in [i for i in plan.inputs if len(i.used) < most]:
        plan.left_out[members[i.index].name] = (f"uses {subset_name(i.used)}, fewer of the case's sequences than"
                                                f" {members[best.index].name} ({subset_name(best.used)})")
    plan.inputs = [i for i in plan.inputs if len(i.used) == most]


def plan_sequences(members: Sequence, available: Sequence[str], case_id: str, *,
                   zero_fill: bool = False) -> SequencePlan:
    """Decide, for a case with the sequences ``available`` (canonical names), what each member
    (:class:`~brats_seg.inference.members.Member`) takes; raises :class:`CaseError` (one line) when none can."""
    channels = union_channels(members)
    plan = SequencePlan(case_id, ordered(available, channels), channels)
    if not plan.available:
        raise CaseError(f"case {case_id}: none of the model's sequences {', '.join(channels)} found"
                        f" (the case has {', '.join(available) or 'none'})")
    for i, m in enumerate(members):
        subset = best_subset(m.trained_subsets, plan.available)
        trained = subset is not None
        if subset is None and zero_fill:
            subset = ordered(plan.available, m.channels)
        if subset is None:
            absent = [c for c in m.channels if c not in plan.available]
            plan.left_out[m.name] = f"missing {', '.join(absent)}; it {_describe(m.trained_subsets, m.channels)}"
            continue
        plan.inputs.append(MemberInput(i, tuple(subset), tuple(c for c in m.channels if c not in subset), trained))
    if len({frozenset(m.channels) for m in members}) > 1:
        _keep_most_informed(plan, members)
    if not plan.inputs:
        absent = [c for c in channels if c not in plan.available]
        if len(members) == 1:
            why = f"the model {_describe(members[0].trained_subsets, channels)}"
        else:
            them = "it" if len(absent) == 1 else "them"
            why = f"none of the {len(members)} ensemble members was trained without {them}"
        hint = f" ({COMPLETE_ONLY_HINT})" if all(list(m.trained_subsets) == [m.channels] for m in members) else ""
        raise CaseError(f"case {case_id}: missing {', '.join(absent)}; {why}{hint}")
    return plan
